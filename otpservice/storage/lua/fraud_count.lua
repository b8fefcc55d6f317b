-- One fraud-guard scope's conversion counts: add an event (optional) and answer the sums of two rolling windows.
-- KEYS[1] scope  otp:fr:{<kind>:<digest>}  hash "<w><i>:<event>" -> count, w a window's letter, i its bucket
--                (the bucket's start / the window's bucket length), event one of the events below.
-- ARGV: now ms, then for the judging window and the history: letter, bucket ms, buckets; then the events in
--       answer order (sent, approved, failed), the event to add ("" to only read), the key's ttl ms.
-- Returns {window sums per event..., history sums per event...}. A write drops the fields of buckets past their
-- window, so a scope's hash holds at most (window buckets + history buckets) x events fields.
local now = tonumber(ARGV[1])
local windows = {{ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])}, {ARGV[5], tonumber(ARGV[6]), tonumber(ARGV[7])}}
local events = {ARGV[8], ARGV[9], ARGV[10]}
local add, ttl = ARGV[11], ARGV[12]

local slot, first = {}, {}  -- per window letter: its index in the answer, its oldest bucket still counted
for w, spec in ipairs(windows) do
  slot[spec[1]] = w
  first[spec[1]] = math.floor(now / spec[2]) - spec[3] + 1
end
local order = {}
for e, name in ipairs(events) do order[name] = e end

local sums = {0, 0, 0, 0, 0, 0}
local stale = {}
local entries = redis.call("HGETALL", KEYS[1])
for j = 1, #entries, 2 do
  local field = entries[j]
  local letter, bucket, event = string.match(field, "^(%a)(%d+):(%a+)$")
  local w, e = slot[letter], order[event]
  if w and e and tonumber(bucket) >= first[letter] then
    sums[(w - 1) * 3 + e] = sums[(w - 1) * 3 + e] + tonumber(entries[j + 1])
  else
    stale[#stale + 1] = field
  end
end

if add ~= "" then
  if #stale > 0 then redis.call("HDEL", KEYS[1], unpack(stale)) end
  for w, spec in ipairs(windows) do
    redis.call("HINCRBY", KEYS[1], spec[1] .. math.floor(now / spec[2]) .. ":" .. add, 1)
    sums[(w - 1) * 3 + order[add]] = sums[(w - 1) * 3 + order[add]] + 1
  end
  redis.call("PEXPIRE", KEYS[1], ttl)
end
return sums
