-- Take one from a sliding-window budget, atomically: refuse when the last `amount` entries all fall inside the
-- window, else log this one. Exact at any instant (no fixed-window double burst).
-- KEYS[1] log  otp:rl:{<scope>:<digest>}  zset of request tokens scored by time (ms)
-- ARGV: now ms, window ms, amount, request token (the member a refund removes), "1" to take or "0" only to ask
-- Returns {1, "0"} when taken (or, asking, when one is left), {0, wait ms} when spent: the wait is exact,
-- since the oldest entry that still counts leaves the window then.
local now, window, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - window)
local count = redis.call("ZCARD", KEYS[1])
if count >= amount then
  local oldest = redis.call("ZRANGE", KEYS[1], count - amount, count - amount, "WITHSCORES")
  return {0, tostring(tonumber(oldest[2]) + window - now)}
end
if ARGV[5] ~= "0" then
  redis.call("ZADD", KEYS[1], now, ARGV[4])
  redis.call("PEXPIRE", KEYS[1], window)
end
return {1, "0"}
