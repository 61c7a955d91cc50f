-- Take the beat lease when nobody holds it, or renew it when we do: one atomic step,
-- or two beats could both find it free and both schedule.
-- KEYS: the lease. ARGV: this beat's name, the lease's length in milliseconds.
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
