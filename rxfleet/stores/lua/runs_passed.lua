-- Mark that a producer's pass (ARGV[1]) has enqueued the batch at ARGV[2]: the
-- highest first sequence number so far (KEYS[1]: the run's intake hash).
local passed = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
if passed < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1
