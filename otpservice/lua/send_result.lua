-- Record how a send went, on the verification record (fields suffixed by the send's number).
-- KEYS[1] record otp:{B}:v:<id>
-- ARGV: send number, outcome ("sent" | "failed" | "released" | "dead"), message id, endpoint, now ms,
--       delivery status, errors JSON
-- failed: the send surely did not happen, so give the cooldown back; dead: nothing can ever be sent to this
-- number (opted out, invalid), so the verification fails and its code is dropped.
-- m<n> is always written (it marks the send as recorded); the others only when not their defaults, which
-- readers supply: e<n> messages, t<n> the record's c, d<n> queued, du<n> t<n>, er<n> [].
local n, outcome, endpoint, now, status, errors = ARGV[1], ARGV[2], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local created = redis.call("HGET", KEYS[1], "c")
if not created then return 0 end
local fields = {"m" .. n, ARGV[3]}
if endpoint ~= "messages" then fields[#fields + 1] = "e" .. n; fields[#fields + 1] = endpoint end
if now ~= created then fields[#fields + 1] = "t" .. n; fields[#fields + 1] = now end
if status ~= "queued" then fields[#fields + 1] = "d" .. n; fields[#fields + 1] = status end
if errors ~= "[]" then fields[#fields + 1] = "er" .. n; fields[#fields + 1] = errors end
redis.call("HSET", KEYS[1], unpack(fields))
if outcome == "failed" or outcome == "dead" then
  redis.call("HSET", KEYS[1], "ls", redis.call("HGET", KEYS[1], "pls") or "0", "ld", "1")
end
if outcome == "dead" and redis.call("HGET", KEYS[1], "s") == "pending" then
  -- The number's pointer to this record stays: a failed record is never live.
  redis.call("HSET", KEYS[1], "s", "failed")
  redis.call("HDEL", KEYS[1], "h")
end
return 1
