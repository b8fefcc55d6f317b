-- Check a code and spend it in one atomic step: exactly one of any number of concurrent right answers wins.
-- KEYS[1] number   otp:{B}:n:<number digest>  (field <purpose>: id of the purpose's latest verification)
-- KEYS[2] failures otp:{B}:fails:<number digest>  (failed attempts of the number, all codes: a sliding log,
--                  so no 24 h span ever holds more than the cap, not even across a window's edge)
-- ARGV: record prefix, candidate hash, now ms, max attempts, failure cap, failure window ms, expected id or "",
--       purpose
local prefix, candidate, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local max_attempts, cap, window, expected = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]

local id = redis.call("HGET", KEYS[1], ARGV[8])
if not id or (expected ~= "" and id ~= expected) then return {"not_found"} end
local rec = prefix .. id
local fields = redis.call("HMGET", rec, "s", "x", "h", "a")
local status, expires, stored, attempts = fields[1], tonumber(fields[2] or "0"), fields[3], tonumber(fields[4] or "0")
-- The pointer outlives its code (it is also the index entry): past the code's expiry, or once the
-- verification is closed, the number has no live verification for this purpose.
if expires <= now then return {"not_found"} end
if status == "max_attempts_reached" then return {"max_attempts", id} end
if status ~= "pending" or not stored then return {"not_found"} end

redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - window)
local failures = redis.call("ZCARD", KEYS[2])
if failures >= cap then
  local oldest = redis.call("ZRANGE", KEYS[2], failures - cap, failures - cap, "WITHSCORES")
  return {"number_locked", id, tostring(tonumber(oldest[2]) + window - now)}
end

-- Both sides are HMACs under a key Redis never sees: an attacker cannot choose what is compared, so the
-- early exit of string equality leaks nothing about the code.
if stored == candidate then
  redis.call("HSET", rec, "s", "approved", "va", now)
  redis.call("HDEL", rec, "h")
  return {"approved", id, tostring(attempts)}
end

attempts = attempts + 1
redis.call("HSET", rec, "a", attempts)
redis.call("ZADD", KEYS[2], now, id .. ":" .. attempts)
redis.call("PEXPIRE", KEYS[2], window)
if attempts >= max_attempts then
  redis.call("HSET", rec, "s", "max_attempts_reached")
  redis.call("HDEL", rec, "h")
end
return {"wrong", id, tostring(attempts)}
