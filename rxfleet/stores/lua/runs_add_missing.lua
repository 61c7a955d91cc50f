-- Write records and vault blobs only where absent: a resumed producer never
-- overwrites a record that a link has already moved on.
-- KEYS: work, vault. ARGV: n, n (seq, record) pairs, then (seq, blob) pairs.
local added = 0
local n = tonumber(ARGV[1])
for i = 2, 2 * n, 2 do
  if redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) == 1 then added = added + 1 end
end
for i = 2 * n + 2, #ARGV, 2 do
  redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
end
return added
