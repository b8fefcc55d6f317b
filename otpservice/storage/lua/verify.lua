-- Check a code and spend it in one atomic step: exactly one of any number of concurrent right answers wins.
-- KEYS[1] number otp:{B}:n:<number digest> (begin_send.lua): field <purpose> = id of the purpose's latest
--         verification; field .f = the number's failed attempts, all codes (a time log: timelog.lua), its newest
--         FAILURE_CAP, so no window-long span ever holds more than the cap, not even across a window's edge. The
--         hash outlives the window after any failure: begin_send keeps it that long past each code's expiry.
-- Records are ARGV[1] .. id (same hash tag).
-- ARGV: record prefix, candidate hash, now ms, purpose, max attempts per code, the number's failure cap, its
--       window ms, expected id (optional)
-- Returns {"approved", id, route of the latest send (false: the default)}, {"wrong", id, attempts}, {"max_attempts", id}, {"not_found"} or
-- {"number_locked", id, ms until a failure leaves the window}.
local MAX_ATTEMPTS, FAILURE_CAP, FAILURE_WINDOW = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local FAIL_LOG = ".f"
--! include timelog

local number = redis.call("HMGET", KEYS[1], ARGV[4], FAIL_LOG)
local id = number[1]
if not id or (ARGV[8] and id ~= ARGV[8]) then return {"not_found"} end
local rec = ARGV[1] .. id
local fields = redis.call("HMGET", rec, "x", "h", "a")
local now, stored = tonumber(ARGV[3]), fields[2]
-- The pointer outlives its code (it is also the index entry): past the code's expiry, the number has no live
-- verification for this purpose.
if tonumber(fields[1] or "0") <= now then return {"not_found"} end
-- A code is live exactly while its record is pending: every step that closes a record (approved and out of
-- attempts here, cancel.lua, send_result.lua's failed send) empties or deletes h, so the status is read only
-- for a closed one, to tell "out of attempts" from the rest.
if not stored or stored == "" then
  if redis.call("HGET", rec, "s") == "max_attempts_reached" then return {"max_attempts", id} end
  return {"not_found"}
end

-- Locked while the number's FAILURE_CAP-th newest failure is inside the window (the log is in time order).
local log = number[2]
if log and #log >= FAILURE_CAP * STAMP then
  local oldest = log_time(log, #log / STAMP - FAILURE_CAP + 1)
  if oldest > now - FAILURE_WINDOW then return {"number_locked", id, oldest + FAILURE_WINDOW - now} end
end

-- Both sides are HMACs under a key Redis never sees: an attacker cannot choose what is compared, so the
-- early exit of string equality leaks nothing about the code.
if stored == ARGV[2] then
  redis.call("HSET", rec, "s", "approved", "va", ARGV[3], "h", "")
  local sends = redis.call("HGET", rec, "n") or "1"
  return {"approved", id, redis.call("HGET", rec, "r" .. sends)}
end

local attempts = tonumber(fields[3] or "0") + 1
if attempts >= MAX_ATTEMPTS then
  redis.call("HSET", rec, "a", attempts, "s", "max_attempts_reached", "h", "")
else
  redis.call("HSET", rec, "a", attempts)
end
redis.call("HSET", KEYS[1], FAIL_LOG, append_log(log, now, FAILURE_CAP))
return {"wrong", id, attempts}
