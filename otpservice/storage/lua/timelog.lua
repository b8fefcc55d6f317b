-- Time logs kept in one hash field (the number's sends .s and failed attempts .f): ms times as 6 big-endian
-- bytes each (ms fit in 48 bits until the year 10889), oldest first: a log of a few sends costs a few dozen
-- bytes of the number's listpack instead of a key of its own. Plain Lua, since the embedded store's Lua has no
-- struct library. load_script puts this text where a script says `--! include timelog`.
local STAMP = 6

-- The times of `raw` (a field's value, or false when absent) later than `after`, oldest first.
local function read_log(raw, after)
  local times = {}
  if raw then
    for pos = 1, #raw - STAMP + 1, STAMP do
      local a, b, c, d, e, f = string.byte(raw, pos, pos + STAMP - 1)
      local t = ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
      if t > after then times[#times + 1] = t end
    end
  end
  return times
end

-- The `i`th time of a log (1: its oldest).
local function log_time(raw, i)
  local a, b, c, d, e, f = string.byte(raw, i * STAMP - STAMP + 1, i * STAMP)
  return ((((a * 256 + b) * 256 + c) * 256 + d) * 256 + e) * 256 + f
end

-- One time as its STAMP bytes.
local function stamp(t)
  local f = t % 256; t = (t - f) / 256
  local e = t % 256; t = (t - e) / 256
  local d = t % 256; t = (t - d) / 256
  local c = t % 256; t = (t - c) / 256
  local b = t % 256; t = (t - b) / 256
  return string.char(t, b, c, d, e, f)
end

-- `times` with `now` added in order (another server's clock may lag), as a field value of its newest `keep`.
local function write_log(times, now, keep)
  local pos = #times + 1
  while pos > 1 and times[pos - 1] > now do
    times[pos] = times[pos - 1]
    pos = pos - 1
  end
  times[pos] = now
  local parts, first = {}, #times - keep + 1
  if first < 1 then first = 1 end
  for j = first, #times do parts[#parts + 1] = stamp(times[j]) end
  return table.concat(parts)
end

-- write_log(every time of `raw`, now, keep) without decoding them when `now` is the newest (the common case):
-- the last `keep` - 1 stamps as they are, then now's.
local function append_log(raw, now, keep)
  local count = raw and #raw / STAMP or 0
  if count > 0 and log_time(raw, count) > now then return write_log(read_log(raw, -1), now, keep) end
  if count < keep then return (raw or "") .. stamp(now) end
  if keep == 1 then return stamp(now) end
  return string.sub(raw, -(keep - 1) * STAMP) .. stamp(now)
end
