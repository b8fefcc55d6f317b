-- Cancel a pending verification: its code stops verifying at once.
-- KEYS[1] record otp:{B}:v:<id>. The number's pointer to it stays: a closed record is never live.
-- ARGV: now ms
local now = tonumber(ARGV[1])
local fields = redis.call("HMGET", KEYS[1], "s", "x")
if fields[1] ~= "pending" or tonumber(fields[2] or "0") <= now then return 0 end
redis.call("HSET", KEYS[1], "s", "canceled", "cx", now)
redis.call("HDEL", KEYS[1], "h")
return 1
