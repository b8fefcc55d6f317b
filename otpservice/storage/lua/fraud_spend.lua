-- Add to one UTC day's spend (a script, so it rides in the same pipelined round trip as a text's counts).
-- KEYS[1] otp:spend:<YYYY-MM-DD>  hash: total and per-country millionths
-- ARGV: the total's field, the country's field, millionths to add (a correction may be negative), ttl ms
redis.call("HINCRBY", KEYS[1], ARGV[1], ARGV[3])
redis.call("HINCRBY", KEYS[1], ARGV[2], ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[4])
return 1
