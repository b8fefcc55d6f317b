-- Apply one Telnyx delivery update, atomically and in one round trip: find the send by its message id among the
-- recipient number's verifications, dedupe the event id, move the send's status forward only, keep carrier
-- errors, and flag a failed latest send for delivery-aware resend.
-- KEYS[1] number  otp:{B}:n:<number digest>  (begin_send.lua): <purpose> -> the purpose's latest verification
--                   id, <id> -> "" for earlier ones, fields starting with "." -> time logs (skipped here)
-- KEYS[2] event   otp:{B}:ev:<event id digest>  (expires by itself)
-- Records are otp:{B}:v:<id> (ARGV[1] .. id); each holds m<k> = Telnyx's message id of its k-th send and n =
-- its send count. Same hash tag {B} everywhere: one slot on a cluster.
-- ARGV: record prefix, message id, new status, errors JSON array, now ms, event ttl ms,
--       failed delivery ("1"/"0"), every status the new one may NOT replace (same rank or later) as one
--       comma-separated list with a comma at each end (",sent,delivered,"), the status of a send with no d<k>
--       (storage/keys.py SEND_FIELDS)
-- Returns {"unknown_message"}, {"duplicate"}, {"unchanged", status, id, k} or {"updated", previous status,
-- sent at ms, id, k, the send's route (false: the default), the cost its send answer gave (co<k>, false: none)}.
local prefix, message_id, status, errors = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local now, failed, default_status = ARGV[5], ARGV[7] == "1", ARGV[9]

-- The send of verification `id` that carried the message: its record, its number k and {d<k>, t<k>}, with the
-- record's n and c. Latest send first (webhooks follow their send closely); one HMGET when the verification
-- has one send, the common case. A send with no message id has m<k> = "", never a match.
local function send_of(id)
  local rec = prefix .. id
  local first = redis.call("HMGET", rec, "n", "c", "m1", "d1", "t1")
  local count = (first[1] or 0) + 0
  for k = count, 2, -1 do
    if redis.call("HGET", rec, "m" .. k) == message_id then
      local later = redis.call("HMGET", rec, "d" .. k, "t" .. k)
      return rec, k, later, first
    end
  end
  if count >= 1 and first[3] == message_id then return rec, 1, {first[4], first[5]}, first end
  return nil
end

-- The purposes' latest verifications first (the common case), then the earlier ones (field <id>, value "").
local entries = redis.call("HGETALL", KEYS[1])
local rec, k, send, record, vid
for pass = 1, 2 do
  for j = 1, #entries, 2 do
    local field, value = entries[j], entries[j + 1]
    if string.sub(field, 1, 1) ~= "." and (value ~= "") == (pass == 1) then  -- not a time log (.s, .f)
      vid = pass == 1 and value or field
      rec, k, send, record = send_of(vid)
      if rec then break end
    end
  end
  if rec then break end
end
-- Not one of this number's retained sends (another number's, or past its retention): nothing to remember.
if not rec then return {"unknown_message"} end
if not redis.call("SET", KEYS[2], "1", "NX", "PX", ARGV[6]) then return {"duplicate"} end

-- Absent fields hold their defaults (storage/keys.py SEND_FIELDS): d<k> ARGV[9], t<k> the record's c, er<k> []
-- (read only when there are errors to add to it).
local current = send[1] or default_status
if string.find(ARGV[8], "," .. current .. ",", 1, true) then return {"unchanged", current, vid, k} end

local n = tostring(k)
local changes = {"d" .. n, status, "du" .. n, now}
if errors ~= "[]" then
  -- Both are JSON arrays written by the service: joining them keeps every carrier error seen so far.
  local old = redis.call("HGET", rec, "er" .. n) or "[]"
  changes[#changes + 1] = "er" .. n
  changes[#changes + 1] = old == "[]" and errors or string.sub(old, 1, -2) .. "," .. string.sub(errors, 2)
end
-- Only the latest send's failure lets the next request skip the cooldown (begin_send reads "ld").
if failed and k == record[1] + 0 then
  changes[#changes + 1] = "ld"
  changes[#changes + 1] = "1"
end
redis.call("HSET", rec, unpack(changes))
local extra = redis.call("HMGET", rec, "r" .. n, "co" .. n)
return {"updated", current, send[2] or record[2] or "0", vid, k, extra[1], extra[2]}
