-- Time logs kept in one hash field (the number's sends .s and failed attempts .f): ms times as 6 big-endian
-- bytes each (ms fit in 48 bits until the year 10889), oldest first. Plain Lua, since the embedded store's Lua
-- has no struct library; written with as few library calls as it can (one string.byte or string.char per
-- time): in Redis each call from a script costs far more than arithmetic (issue 6). load_script puts this
-- text where a script says `--! include timelog`.
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
  for j = first, #times do
    local t = times[j]
    local f = t % 256; t = (t - f) / 256
    local e = t % 256; t = (t - e) / 256
    local d = t % 256; t = (t - d) / 256
    local c = t % 256; t = (t - c) / 256
    local b = t % 256; t = (t - b) / 256
    parts[#parts + 1] = string.char(t, b, c, d, e, f)
  end
  return table.concat(parts)
end
