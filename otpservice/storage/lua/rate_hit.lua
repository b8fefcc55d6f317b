-- Take one send from a sliding-window budget, atomically: refuse when the last `amount` sends all fall
-- inside the window, else log this send. Exact at any instant (no fixed-window double burst).
-- KEYS[1] log  otp:rl:{<scope>:<digest>}  zset of request tokens scored by send time (ms)
-- ARGV: now ms, window ms, amount, request token (the member a refund removes)
-- Returns {1, "0"} when taken, {0, wait ms} when refused: the wait is exact, since the oldest send that
-- still counts leaves the window then.
local now, window, amount = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", now - window)
local count = redis.call("ZCARD", KEYS[1])
if count >= amount then
  local oldest = redis.call("ZRANGE", KEYS[1], count - amount, count - amount, "WITHSCORES")
  return {0, tostring(tonumber(oldest[2]) + window - now)}
end
redis.call("ZADD", KEYS[1], now, ARGV[4])
redis.call("PEXPIRE", KEYS[1], window)
return {1, "0"}
