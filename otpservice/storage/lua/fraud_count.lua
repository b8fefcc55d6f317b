-- One fraud-guard scope's conversion counts: read the sums of two rolling windows, or add one event.
-- KEYS[1] scope  otp:fr:{<kind>:<digest>}  hash "<w><i>:<event>" -> count, w a window's letter, i its bucket
--                (the bucket's start / the window's bucket length), event one of the events below.
-- ARGV: now ms, then for the judging window and the history: letter, bucket ms, buckets; then the events in
--       answer order (sent, approved, failed), the event to add ("" to only read), the key's ttl ms.
-- A read returns {window sums per event..., history sums per event...}; an add returns {}. An add that opens a
-- bucket (its field is new) drops the fields of buckets past their window, so a scope's hash holds at most
-- (window buckets + history buckets + 2) x events fields; the other adds are two HINCRBYs and a PEXPIRE.
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

-- Each field's place in the answer, or nil for a field past its window (or not ours).
local function place(field)
  local letter, bucket, event = string.match(field, "^(%a)(%d+):(%a+)$")
  local w, e = slot[letter], order[event]
  if w and e and tonumber(bucket) >= first[letter] then return (w - 1) * 3 + e end
  return nil
end

if add ~= "" then
  local opened = false
  for _, spec in ipairs(windows) do
    if redis.call("HINCRBY", KEYS[1], spec[1] .. math.floor(now / spec[2]) .. ":" .. add, 1) == 1 then
      opened = true
    end
  end
  if opened then
    local stale = {}
    local fields = redis.call("HKEYS", KEYS[1])
    for _, field in ipairs(fields) do
      if not place(field) then stale[#stale + 1] = field end
    end
    if #stale > 0 then redis.call("HDEL", KEYS[1], unpack(stale)) end
  end
  redis.call("PEXPIRE", KEYS[1], ttl)
  return {}
end

local sums = {0, 0, 0, 0, 0, 0}
local entries = redis.call("HGETALL", KEYS[1])
for j = 1, #entries, 2 do
  local at = place(entries[j])
  if at then sums[at] = sums[at] + tonumber(entries[j + 1]) end
end
return sums
