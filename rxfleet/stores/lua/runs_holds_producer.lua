-- 1 when ARGV[1] holds the run's producer lease (KEYS[1]), else 0.
if redis.call('GET', KEYS[1]) == ARGV[1] then return 1 end
return 0
