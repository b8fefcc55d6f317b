-- Cancel a pending verification: its code stops verifying at once.
-- KEYS[1] record otp:{B}:v:<id>; its pointer key (field pk) shares the hash tag.
-- ARGV: now ms
local now = tonumber(ARGV[1])
local fields = redis.call("HMGET", KEYS[1], "s", "x", "pk")
if fields[1] ~= "pending" or tonumber(fields[2] or "0") <= now then return 0 end
redis.call("HSET", KEYS[1], "s", "canceled", "cx", now)
redis.call("HDEL", KEYS[1], "h")
local id = string.match(KEYS[1], ":v:(.+)$")
if fields[3] and redis.call("GET", fields[3]) == id then redis.call("DEL", fields[3]) end
return 1
