-- Check a code and spend it in one atomic step: exactly one of any number of concurrent right answers wins.
-- KEYS[1] number otp:{B}:n:<number digest> (begin_send.lua): field <purpose> = id of the purpose's latest
--         verification; field .f = the number's failed attempts, all codes (a time log: timelog.lua), at most
--         `cap` of them, so no window-long span ever holds more than the cap, not even across a window's edge.
-- Records are ARGV[1] .. id (same hash tag).
-- ARGV: record prefix, candidate hash, now ms, max attempts, failure cap, failure window ms, purpose,
--       expected id (optional)
-- Returns {"approved", id, attempts}, {"wrong", id, attempts}, {"max_attempts", id}, {"not_found"} or
-- {"number_locked", id, ms until a failure leaves the window}.
-- Every /verify waits for this script, and Redis spends several thousand instructions on each command, each
-- argument and each number turned into text (issue 6): a right code takes three commands (the number, the
-- record, the spend) and a wrong one five; arguments are converted only where they are used.
local FAIL_LOG = ".f"
--! include timelog

local number = redis.call("HMGET", KEYS[1], ARGV[7], FAIL_LOG)
local id = number[1]
if not id or (ARGV[8] and id ~= ARGV[8]) then return {"not_found"} end
local rec = ARGV[1] .. id
local fields = redis.call("HMGET", rec, "s", "x", "h", "a")
local status, stored = fields[1], fields[3]
local now = tonumber(ARGV[3])
-- The pointer outlives its code (it is also the index entry): past the code's expiry, or once the
-- verification is closed, the number has no live verification for this purpose. A spent code's h is "".
if tonumber(fields[2] or "0") <= now then return {"not_found"} end
if status == "max_attempts_reached" then return {"max_attempts", id} end
if status ~= "pending" or not stored or stored == "" then return {"not_found"} end

-- The number's failures in the window (none logged: none at all, the common case, read without a call).
local cap, failures = tonumber(ARGV[5]), {}
if number[2] then
  local window = tonumber(ARGV[6])
  failures = read_log(number[2], now - window)
  if #failures >= cap then return {"number_locked", id, failures[#failures - cap + 1] + window - now} end
end

-- Both sides are HMACs under a key Redis never sees: an attacker cannot choose what is compared, so the
-- early exit of string equality leaks nothing about the code.
if stored == ARGV[2] then
  redis.call("HSET", rec, "s", "approved", "va", ARGV[3], "h", "")
  return {"approved", id, fields[4] or "0"}
end

local attempts = tonumber(fields[4] or "0") + 1
if attempts >= tonumber(ARGV[4]) then
  redis.call("HSET", rec, "a", attempts, "s", "max_attempts_reached", "h", "")
else
  redis.call("HSET", rec, "a", attempts)
end
redis.call("HSET", KEYS[1], FAIL_LOG, write_log(failures, now, cap))
-- The number's hash lives at least as long as its failures count (GT: never shortened).
redis.call("PEXPIRE", KEYS[1], ARGV[6], "GT")
return {"wrong", id, attempts}
