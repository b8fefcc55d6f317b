-- Record how a send went, on the verification record (fields suffixed by the send's number).
-- KEYS[1] record otp:{B}:v:<id>
-- ARGV: send number, outcome ("sent" | "failed" | "released" | "dead"), message id, endpoint, now ms,
--       delivery status, errors JSON
-- failed: the send surely did not happen, so give the cooldown back; dead: nothing can ever be sent to this
-- number (opted out, invalid), so the verification fails and its code is dropped.
local n, outcome = ARGV[1], ARGV[2]
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], "m" .. n, ARGV[3], "e" .. n, ARGV[4], "t" .. n, ARGV[5], "d" .. n, ARGV[6],
  "du" .. n, ARGV[5], "er" .. n, ARGV[7])
if outcome == "failed" or outcome == "dead" then
  redis.call("HSET", KEYS[1], "ls", redis.call("HGET", KEYS[1], "pls") or "0", "ld", "1")
end
if outcome == "dead" and redis.call("HGET", KEYS[1], "s") == "pending" then
  redis.call("HSET", KEYS[1], "s", "failed")
  redis.call("HDEL", KEYS[1], "h")
  local pk = redis.call("HGET", KEYS[1], "pk")
  local id = string.match(KEYS[1], ":v:(.+)$")
  if pk and redis.call("GET", pk) == id then redis.call("DEL", pk) end
end
return 1
