-- Apply one Telnyx delivery update to one send of a verification, atomically: dedupe the event id, move the
-- send's status forward only, keep carrier errors, and flag a failed latest send for delivery-aware resend.
-- KEYS[1] record  otp:{B}:v:<id>
-- KEYS[2] event   otp:{B}:ev:<event id digest>  (same hash tag: one slot on a cluster; expires by itself)
-- ARGV: send number, message id, new status, errors JSON array, now ms, event ttl ms,
--       failed delivery ("1"/"0"), then every status the new one may NOT replace (same rank or later)
local n, message_id, status, errors = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, event_ttl, failed = ARGV[5], tonumber(ARGV[6]), ARGV[7] == "1"

-- The record outlived by its message map (or a mismatched map): nothing to update, nothing to remember.
if redis.call("HGET", KEYS[1], "m" .. n) ~= message_id then return {"unknown"} end
if not redis.call("SET", KEYS[2], "1", "NX", "PX", event_ttl) then return {"duplicate"} end

-- Absent fields hold their defaults (send_result.lua): d<n> queued, t<n> the record's c, er<n> [].
local fields = redis.call("HMGET", KEYS[1], "d" .. n, "t" .. n, "n", "er" .. n, "c")
local current = fields[1] or "queued"
for i = 8, #ARGV do
  if current == ARGV[i] then return {"unchanged", current} end
end

redis.call("HSET", KEYS[1], "d" .. n, status, "du" .. n, now)
if errors ~= "[]" then
  -- Both are JSON arrays written by the service: joining them keeps every carrier error seen so far.
  local old = fields[4] or "[]"
  local merged = errors
  if old ~= "[]" then merged = string.sub(old, 1, -2) .. "," .. string.sub(errors, 2) end
  redis.call("HSET", KEYS[1], "er" .. n, merged)
end
-- Only the latest send's failure lets the next request skip the cooldown (begin_send reads "ld").
if failed and fields[3] == n then redis.call("HSET", KEYS[1], "ld", "1") end
return {"updated", current, fields[2] or fields[5] or "0"}
