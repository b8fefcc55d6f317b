-- Time logs kept in one hash field (the number's sends .s and failed attempts .f): ms times as 6 big-endian
-- bytes each (ms fit in 48 bits until the year 10889), oldest first. Plain Lua, since the embedded store's Lua
-- has no struct library. load_script puts this text where a script says `--! include timelog`.
local STAMP = 6

-- The times of `raw` (a field's value, or false when absent) later than `after`, oldest first.
local function read_log(raw, after)
  local times = {}
  if raw then
    for pos = 1, #raw - STAMP + 1, STAMP do
      local t = 0
      for i = pos, pos + STAMP - 1 do t = t * 256 + string.byte(raw, i) end
      if t > after then times[#times + 1] = t end
    end
  end
  return times
end

-- `times` with `now` added in order (another server's clock may lag), as a field value of its newest `keep`.
local function write_log(times, now, keep)
  local pos = #times + 1
  while pos > 1 and times[pos - 1] > now do pos = pos - 1 end
  table.insert(times, pos, now)
  local parts = {}
  for j = math.max(1, #times - keep + 1), #times do
    local t, out = times[j], {}
    for i = STAMP, 1, -1 do
      out[i] = string.char(t % 256)
      t = math.floor(t / 256)
    end
    parts[#parts + 1] = table.concat(out)
  end
  return table.concat(parts)
end
