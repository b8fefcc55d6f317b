-- Reserve a send for one number and purpose, atomically: reuse the live verification (new code, same id,
-- attempts kept) or create one; refuse inside the resend cooldown. Every key written gets its expiry here.
-- KEYS[1] number   otp:{B}:n:<number digest>   hash, one small listpack per number:
--                    <purpose> -> id of the purpose's latest verification (live while its record is pending
--                                 and unexpired), <id> -> "" (an earlier verification, for the admin list),
--                    .s        -> the number's sends for the per-number limits (a time log: timelog.lua),
--                    .f        -> its failed attempts (verify.lua)
--                  (time logs start with "."; every script skips such fields when it walks the verifications)
-- KEYS[2] opt-outs otp:{B}:oo:<number digest>  hash of opt-out records (any: refuse)
-- Records are otp:{B}:v:<id> (ARGV[1] .. id): same hash tag {B} as KEYS, so the same slot on a cluster.
-- ARGV: record prefix, new id, code hash, phone, purpose, now ms, code ttl ms, retention ms, cooldown ms,
--       skip cooldown when the latest send failed ("1"/"0"), the least the number's hash lives after a send in
--       ms (the code's failures count for a window after them: verify.lua logs them without an expiry call of
--       its own), the number's failure cap and its window ms (verify.lua's), number of limits, then per limit:
--       policy name, amount, window ms; then the number of extra field/value pairs of a new record and the
--       pairs (fields not at their defaults: storage/keys.py)
-- Refusals: {"opted_out", ""}, {"locked", "", wait ms} (the number's failures reached their cap: a new code
-- could never verify), {"cooldown", id, wait ms} (whatever became of the purpose's latest verification:
-- pending, approved, locked or canceled), {"limited", policy, wait ms}; a refusal spends nothing.
-- Record fields equal to their defaults are not written (readers supply them, storage/keys.py RECORD_FIELDS):
-- a 0 for a, pls and ld, ls = c.
local prefix, new_id, hash, phone, purpose = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now, ttl, retention, cooldown = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local failover_ok, keep = ARGV[10] == "1", tonumber(ARGV[11])
local failure_cap, failure_window, nlimits = tonumber(ARGV[12]), tonumber(ARGV[13]), tonumber(ARGV[14])
local extra_at = 15 + nlimits * 3  -- the count of extra record fields, then the pairs
local SEND_LOG, FAIL_LOG = ".s", ".f"
--! include timelog

if redis.call("EXISTS", KEYS[2]) == 1 then return {"opted_out", ""} end

-- Locked while the number's failure_cap-th newest failure is inside the window (as verify.lua decides).
local failures = redis.call("HGET", KEYS[1], FAIL_LOG)
if failures and #failures >= failure_cap * STAMP then
  local oldest = log_time(failures, #failures / STAMP - failure_cap + 1)
  if oldest > now - failure_window then return {"locked", "", tostring(oldest + failure_window - now)} end
end

-- Per-number budgets are sliding logs over one list of send times (every budget logs every send, so one
-- list serves them all), kept to the longest window and the largest amount: enough to answer each budget
-- exactly. The longest wait is reported, so a client that waits as told is not refused again by another.
local longest, most = 0, 0
for i = 1, nlimits do
  local at = 14 + (i - 1) * 3
  longest = math.max(longest, tonumber(ARGV[at + 3]))
  most = math.max(most, tonumber(ARGV[at + 2]))
end
local sends = read_log(nlimits > 0 and redis.call("HGET", KEYS[1], SEND_LOG), now - longest)
local worst, worst_wait = nil, 0
for i = 1, nlimits do
  local at = 14 + (i - 1) * 3
  local amount, window = tonumber(ARGV[at + 2]), tonumber(ARGV[at + 3])
  local inside = {}
  for _, t in ipairs(sends) do
    if t > now - window then inside[#inside + 1] = t end
  end
  if #inside >= amount then
    local wait = inside[#inside - amount + 1] + window - now
    if wait > worst_wait then worst, worst_wait = ARGV[at + 1], wait end
  end
end

-- The number's hash lives as long as its longest-lived part: the index (retention), the send log, or the failure
-- log (`keep`: a failure happens while a code sent here is live, and counts for a window after it).
local function keep_alive()
  local life = math.max(retention, longest, keep)
  if redis.call("PTTL", KEYS[1]) < life then redis.call("PEXPIRE", KEYS[1], life) end
end

local function spend()
  if nlimits == 0 then return end
  redis.call("HSET", KEYS[1], SEND_LOG, write_log(sends, now, most))
end

local id = redis.call("HGET", KEYS[1], purpose)
if id then
  local rec = prefix .. id
  local fields = redis.call("HMGET", rec, "s", "x", "ls", "n", "a", "c", "ld")
  local status, expires = fields[1], tonumber(fields[2] or "0")
  local delivery_failed = fields[7] == "1"
  if status then
    -- The cooldown runs from the purpose's latest send whatever became of its verification: an approval, a
    -- lock-out or a cancel does not open the way to a burst of texts.
    local wait = tonumber(fields[3] or fields[6]) + cooldown - now
    if wait > 0 and not (failover_ok and delivery_failed) and wait >= worst_wait then
      return {"cooldown", id, tostring(wait)}
    end
  end
  if status == "pending" and expires > now then
    if worst then return {"limited", worst, tostring(worst_wait)} end
    local last = tonumber(fields[3] or fields[6])
    local count = tonumber(fields[4]) + 1
    -- A new code replaces the old one; attempts are not given back (security bar).
    redis.call("HSET", rec, "h", hash, "x", now + ttl, "ls", now, "pls", last, "n", count)
    redis.call("HDEL", rec, "ld")
    spend()
    keep_alive()
    -- After a failed text, the route it took (r<k>, absent: the default route): the resend starts after it.
    local failed_route = delivery_failed and redis.call("HGET", rec, "r" .. fields[4]) or ""
    return {"resend", id, tostring(count), fields[5] or "0", fields[6], tostring(now + ttl),
            delivery_failed and "1" or "0", failed_route}
  end
end

if worst then return {"limited", worst, tostring(worst_wait)} end
local rec = prefix .. new_id
redis.call("HSET", rec, "p", phone, "u", purpose, "c", now, "x", now + ttl, "h", hash, "s", "pending", "n", 1)
if tonumber(ARGV[extra_at]) > 0 then redis.call("HSET", rec, unpack(ARGV, extra_at + 1)) end
redis.call("PEXPIRE", rec, retention)
-- The index: drop verifications past their retention (their records are gone), keep the purpose's previous
-- one as an earlier verification, and point the purpose at the new one.
local entries = redis.call("HGETALL", KEYS[1])
for j = 1, #entries, 2 do
  local field, value = entries[j], entries[j + 1]
  if string.sub(field, 1, 1) ~= "." then  -- not one of the number's time logs (.s, .f)
    local vid = value ~= "" and value or field
    if redis.call("EXISTS", prefix .. vid) == 0 then redis.call("HDEL", KEYS[1], field) end
  end
end
if id and redis.call("EXISTS", prefix .. id) == 1 then redis.call("HSET", KEYS[1], id, "") end
redis.call("HSET", KEYS[1], purpose, new_id)
spend()
keep_alive()
return {"new", new_id, "1", "0", tostring(now), tostring(now + ttl), "0", ""}
