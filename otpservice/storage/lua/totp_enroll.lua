-- Start (or restart) an enrollment, unless the user already has a confirmed factor: one atomic step, so two
-- concurrent enrollments cannot overwrite a factor that a third request has just confirmed.
-- KEYS[1] factor  otp:{T}:totp:f:<user digest>
-- ARGV: sealed secret, enrollment id, label, now ms, expires at ms, ttl ms
local status = redis.call("HGET", KEYS[1], "s")
if status == "confirmed" then return {"exists"} end
-- A previous unconfirmed enrollment is replaced whole: its secret must never verify again.
redis.call("DEL", KEYS[1])
redis.call("HSET", KEYS[1], "s", "unconfirmed", "sb", ARGV[1], "e", ARGV[2], "l", ARGV[3], "c", ARGV[4],
           "x", ARGV[5])
redis.call("PEXPIRE", KEYS[1], ARGV[6])
return {"enrolled"}
