-- Record a fraud-guard block unless its scope already has a live one or is exempt (a lifted block), and drop
-- the records and exemptions that have ended.
-- KEYS[1] guard otp:{fr}:guard  hash  ARGV[2] -> block record (JSON), ARGV[3] -> exemption end ms
-- KEYS[2] until otp:{fr}:until  zset  the same fields scored by their end
-- ARGV: now ms, the block's field, the scope's exemption field, the record (JSON), its end ms
-- Returns {1, record} when this call recorded it, {0, the live record} when one was there, {2, end} when exempt.
local now = tonumber(ARGV[1])
local ended = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now, "LIMIT", 0, 100)
if #ended > 0 then
  redis.call("HDEL", KEYS[1], unpack(ended))
  redis.call("ZREM", KEYS[2], unpack(ended))
end
local exempt = tonumber(redis.call("ZSCORE", KEYS[2], ARGV[3]) or "0")
if exempt > now then return {2, tostring(exempt)} end
if tonumber(redis.call("ZSCORE", KEYS[2], ARGV[2]) or "0") > now then
  return {0, redis.call("HGET", KEYS[1], ARGV[2])}
end
redis.call("HSET", KEYS[1], ARGV[2], ARGV[4])
redis.call("ZADD", KEYS[2], ARGV[5], ARGV[2])
return {1, ARGV[4]}
