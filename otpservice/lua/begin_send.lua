-- Reserve a send for one number and purpose, atomically: reuse the live verification (new code, same id,
-- attempts kept) or create one; refuse inside the resend cooldown. Every key written gets its expiry here.
-- KEYS[1] pointer  otp:{B}:cur:<number digest>:<purpose>  -> id of the live verification
-- KEYS[2] index    otp:{B}:idx:<number digest>            -> zset of the number's verification ids
-- KEYS[3] opt-outs otp:{B}:oo:<number digest>             -> hash of opt-out records (any: refuse)
-- KEYS[4..] send logs otp:{B}:rl:<number digest>:<policy> -> zsets of send tokens by time (per-number limits)
-- Records are otp:{B}:v:<id> (ARGV[1] .. id): same hash tag {B} as KEYS, so the same slot on a cluster.
-- ARGV: record prefix, new id, code hash, phone, purpose, now ms, code ttl ms, retention ms, cooldown ms,
--       skip cooldown when the latest send failed ("1"/"0"), channel, request token, number of limits,
--       then per limit (matching KEYS[3 + i]): policy name, amount, window ms
-- Refusals: {"opted_out", ""}, {"cooldown", id, wait ms}, {"limited", policy, wait ms}; a refusal spends nothing.
local prefix, new_id, hash, phone, purpose = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, ttl, retention, cooldown = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local failover_ok, channel = ARGV[10] == "1", ARGV[11]
local token, nlimits = ARGV[12] or "", tonumber(ARGV[13] or "0")

if KEYS[3] and redis.call("EXISTS", KEYS[3]) == 1 then return {"opted_out", ""} end

-- Per-number budgets are sliding logs. The longest wait is reported, so a client that waits as told is not
-- refused again by another budget.
local worst, worst_wait = nil, 0
for i = 1, nlimits do
  local key, at = KEYS[3 + i], 13 + (i - 1) * 3
  local amount, window = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  redis.call("ZREMRANGEBYSCORE", key, "-inf", now - window)
  local count = redis.call("ZCARD", key)
  if count >= amount then
    local oldest = redis.call("ZRANGE", key, count - amount, count - amount, "WITHSCORES")
    local wait = tonumber(oldest[2]) + window - now
    if wait > worst_wait then worst, worst_wait = ARGV[at + 1], wait end
  end
end

local function spend()
  for i = 1, nlimits do
    redis.call("ZADD", KEYS[3 + i], now, token)
    redis.call("PEXPIRE", KEYS[3 + i], tonumber(ARGV[13 + (i - 1) * 3 + 3]))
  end
end

local id = redis.call("GET", KEYS[1])
if id then
  local rec = prefix .. id
  local fields = redis.call("HMGET", rec, "s", "x", "ls", "n", "a", "c", "ld")
  local status, expires, last = fields[1], tonumber(fields[2] or "0"), tonumber(fields[3] or "0")
  if status == "pending" and expires > now then
    local wait = last + cooldown - now
    local delivery_failed = fields[7] == "1"
    if wait > 0 and not (failover_ok and delivery_failed) and wait >= worst_wait then
      return {"cooldown", id, tostring(wait)}
    end
    if worst then return {"limited", worst, tostring(worst_wait)} end
    local count = tonumber(fields[4]) + 1
    -- A new code replaces the old one; attempts are not given back (security bar).
    redis.call("HSET", rec, "h", hash, "x", now + ttl, "ls", now, "pls", last, "n", count, "ld", "0")
    redis.call("SET", KEYS[1], id, "PX", ttl)
    spend()
    return {"resend", id, tostring(count), fields[5], fields[6], tostring(now + ttl), delivery_failed and "1" or "0"}
  end
end

if worst then return {"limited", worst, tostring(worst_wait)} end
local rec = prefix .. new_id
redis.call("HSET", rec, "p", phone, "u", purpose, "ch", channel, "c", now, "x", now + ttl, "h", hash,
  "a", 0, "s", "pending", "n", 1, "ls", now, "pls", 0, "ld", "0", "pk", KEYS[1])
redis.call("PEXPIRE", rec, retention)
redis.call("SET", KEYS[1], new_id, "PX", ttl)
redis.call("ZADD", KEYS[2], now, new_id)
redis.call("ZREMRANGEBYSCORE", KEYS[2], "-inf", now - retention)
redis.call("PEXPIRE", KEYS[2], retention)
spend()
return {"new", new_id, "1", "0", tostring(now), tostring(now + ttl), "0"}
