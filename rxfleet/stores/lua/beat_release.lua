-- Give the beat lease up, only if it is still ours (a standby may hold it by now).
-- KEYS: the lease. ARGV: this beat's name.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
