-- Accept a TOTP code's time step at most once, together with the attempt counting: one atomic step, so of
-- any number of concurrent requests carrying one right code exactly one is approved.
-- KEYS[1] factor   otp:{T}:totp:f:<user digest>     (hash; no expiry once confirmed)
-- KEYS[2] failures otp:{T}:totp:fail:<user digest>  (wrong codes since the first of a lockout window)
-- KEYS[3] daily    otp:{T}:totp:day:<user digest>   (wrong codes per 24 h, fixed window)
-- ARGV: wanted status ("unconfirmed" to confirm, "confirmed" to verify), enrollment id the caller checked
--       against, matched step or "" (no step in the drift window produced the code), now ms, max attempts,
--       lockout ms, daily cap, daily window ms
local want, enrollment, step, now = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local max_attempts, lockout, cap, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])

local rec = redis.call("HMGET", KEYS[1], "s", "e", "ls")
-- The code was matched against the secret of enrollment `e`: a factor deleted or re-enrolled meanwhile is gone.
if rec[1] ~= want or rec[2] ~= enrollment then return {"not_found"} end

local failures = tonumber(redis.call("GET", KEYS[2]) or "0")
if failures >= max_attempts then return {"max_attempts", tostring(redis.call("PTTL", KEYS[2]))} end
if tonumber(redis.call("GET", KEYS[3]) or "0") >= cap then
  return {"max_attempts", tostring(redis.call("PTTL", KEYS[3]))}
end

local last = tonumber(rec[3] or "-1")
if step and step > last then
  redis.call("HSET", KEYS[1], "ls", step, "lu", now)
  if want == "unconfirmed" then
    redis.call("HSET", KEYS[1], "s", "confirmed", "cf", now)
    redis.call("HDEL", KEYS[1], "x")
    redis.call("PERSIST", KEYS[1])  -- a confirmed factor is a long-lived credential
  end
  redis.call("DEL", KEYS[2])  -- the lockout counts consecutive failures
  return {"approved", "0"}
end

-- A wrong code, or a right code of a step already used (a replay): both are failed attempts.
failures = redis.call("INCR", KEYS[2])
if failures >= max_attempts then
  redis.call("PEXPIRE", KEYS[2], lockout)  -- locked for the whole window from the last failure
else
  redis.call("PEXPIRE", KEYS[2], lockout, "NX")
end
redis.call("INCR", KEYS[3])
redis.call("PEXPIRE", KEYS[3], window, "NX")
return {"wrong", tostring(failures)}
