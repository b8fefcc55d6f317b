-- Record a fraud-guard block unless its scope already has a live one or is exempt (a lifted block), and drop
-- the records and exemptions that have ended.
-- KEYS[1] guard otp:{fr}:guard  hash  ARGV[2] -> block record (JSON), ARGV[3] -> exemption end ms
-- KEYS[2] until otp:{fr}:until  zset  the same fields scored by their end
-- ARGV: now ms, the block's field, the scope's exemption field, the record (JSON), its end ms, and "1" to
--       extend: the record is the live one with a later end, written only while that block is live
-- Returns {1, record} when this call recorded it, {0, the live record} when one was there (extended: the new
-- one), {2, end} when exempt, {3} when extending a block that is no longer live.
local now = tonumber(ARGV[1])
local ended = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", now, "LIMIT", 0, 100)
if #ended > 0 then
  redis.call("HDEL", KEYS[1], unpack(ended))
  redis.call("ZREM", KEYS[2], unpack(ended))
end
local exempt = tonumber(redis.call("ZSCORE", KEYS[2], ARGV[3]) or "0")
if exempt > now then return {2, tostring(exempt)} end
local live = tonumber(redis.call("ZSCORE", KEYS[2], ARGV[2]) or "0") > now
if ARGV[6] == "1" then
  if not live then return {3} end
  redis.call("HSET", KEYS[1], ARGV[2], ARGV[4])
  redis.call("ZADD", KEYS[2], ARGV[5], ARGV[2])
  return {0, ARGV[4]}
end
if live then return {0, redis.call("HGET", KEYS[1], ARGV[2])} end
redis.call("HSET", KEYS[1], ARGV[2], ARGV[4])
redis.call("ZADD", KEYS[2], ARGV[5], ARGV[2])
return {1, ARGV[4]}
