-- Reserve a send for one number and purpose, atomically: reuse the live verification (new code, same id,
-- attempts kept) or create one; refuse inside the resend cooldown. Every key written gets its expiry here.
-- KEYS[1] pointer  otp:{B}:cur:<number digest>:<purpose>  -> id of the live verification
-- KEYS[2] index    otp:{B}:idx:<number digest>            -> zset of the number's verification ids
-- Records are otp:{B}:v:<id> (ARGV[1] .. id): same hash tag {B} as KEYS, so the same slot on a cluster.
-- ARGV: record prefix, new id, code hash, phone, purpose, now ms, code ttl ms, retention ms, cooldown ms,
--       skip cooldown when the latest send failed ("1"/"0"), channel
local prefix, new_id, hash, phone, purpose = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, ttl, retention, cooldown = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local failover_ok, channel = ARGV[10] == "1", ARGV[11]

local id = redis.call("GET", KEYS[1])
if id then
  local rec = prefix .. id
  local fields = redis.call("HMGET", rec, "s", "x", "ls", "n", "a", "c", "ld")
  local status, expires, last = fields[1], tonumber(fields[2] or "0"), tonumber(fields[3] or "0")
  if status == "pending" and expires > now then
    local wait = last + cooldown - now
    local delivery_failed = fields[7] == "1"
    if wait > 0 and not (failover_ok and delivery_failed) then
      return {"cooldown", id, tostring(wait)}
    end
    local count = tonumber(fields[4]) + 1
    -- A new code replaces the old one; attempts are not given back (security bar).
    redis.call("HSET", rec, "h", hash, "x", now + ttl, "ls", now, "pls", last, "n", count, "ld", "0")
    redis.call("SET", KEYS[1], id, "PX", ttl)
    return {"resend", id, tostring(count), fields[5], fields[6], tostring(now + ttl), delivery_failed and "1" or "0"}
  end
end

local rec = prefix .. new_id
redis.call("HSET", rec, "p", phone, "u", purpose, "ch", channel, "c", now, "x", now + ttl, "h", hash,
  "a", 0, "s", "pending", "n", 1, "ls", now, "pls", 0, "ld", "0", "pk", KEYS[1])
redis.call("PEXPIRE", rec, retention)
redis.call("SET", KEYS[1], new_id, "PX", ttl)
redis.call("ZADD", KEYS[2], now, new_id)
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - retention)
redis.call("PEXPIRE", KEYS[2], retention)
return {"new", new_id, "1", "0", tostring(now), tostring(now + ttl), "0"}
