-- Admit an ingested slice, once: while the slice is still shipped (KEYS[3] holds
-- ARGV[1]), write its records and vault blobs where absent, drop the slice, count
-- its claims off the shipped total and mark how far its producer's pass got; a
-- second intake of the same slice (a redelivery, a re-drive) finds it gone and
-- writes nothing. Returns the records added, or -1 when the slice was admitted before.
-- KEYS: work, vault, slices, slicing, intake.
-- ARGV: first, count, pass, n, n (seq, record) pairs, then (seq, blob) pairs.
if redis.call('HDEL', KEYS[3], ARGV[1]) == 0 then return -1 end
redis.call('DECRBY', KEYS[4], ARGV[2])
local first = tonumber(ARGV[1])
local passed = tonumber(redis.call('HGET', KEYS[5], ARGV[3]) or '-1')
if passed < first then redis.call('HSET', KEYS[5], ARGV[3], first) end
local added = 0
local n = tonumber(ARGV[4])
for i = 5, 2 * n + 3, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then added = added + 1 end
end
for i = 2 * n + 5, #ARGV, 2 do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
end
return added
