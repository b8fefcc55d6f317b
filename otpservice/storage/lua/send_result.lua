-- Record how a send went, on the verification record (fields suffixed by the send's number k).
-- KEYS[1] record otp:{B}:v:<id>
-- ARGV: outcome (vocabulary.SEND_RECORD_OUTCOMES), then the send's field/value pairs to write: m<k> and t<k>,
--       and the others only where they differ from their defaults (storage/verifications.py send_fields).
-- failed: the send surely did not happen, so give the cooldown back; dead: nothing can ever be sent to this
-- number (opted out, invalid), so the verification fails and its code is dropped; sent and uncertain (no
-- answer: the text may still arrive) keep the code and the cooldown.
local outcome = ARGV[1]
if redis.call("EXISTS", KEYS[1]) == 0 then return 0 end
redis.call("HSET", KEYS[1], unpack(ARGV, 2))
if outcome == "failed" or outcome == "dead" then
  redis.call("HSET", KEYS[1], "ls", redis.call("HGET", KEYS[1], "pls") or "0", "ld", "1")
end
if outcome == "dead" and redis.call("HGET", KEYS[1], "s") == "pending" then
  -- The number's pointer to this record stays: a failed record is never live.
  redis.call("HSET", KEYS[1], "s", "failed")
  redis.call("HDEL", KEYS[1], "h")
end
return 1
