-- A recorded batch leaves Redis: the count goes up by what was actually removed,
-- so a redelivered record link (its rows already in the database) counts once.
-- KEYS: work, vault, leases, batches, done, the fleet's metrics.
-- ARGV: first, n, n seqs, then (optionally) n tallies: each the tab-separated
-- counter fields its claim adds one to in KEYS[6] (the fleet's metrics), added
-- only for the claims this call removed: counted exactly once, with the done count.
local n = tonumber(ARGV[2])
local seqs = {}
for i = 3, 2 + n do seqs[#seqs + 1] = ARGV[i] end
local present = {}
for slice in slices(seqs, UNPACK_SLICE) do
  for _, value in ipairs(redis.call('HMGET', KEYS[1], unpack(slice))) do
    present[#present + 1] = value
  end
  redis.call('HDEL', KEYS[1], unpack(slice))
  redis.call('HDEL', KEYS[2], unpack(slice))
  redis.call('HDEL', KEYS[3], unpack(slice))
end
local removed, adds = 0, {}
for i, seq in ipairs(seqs) do
  if present[i] then
    removed = removed + 1
    local tally = ARGV[2 + n + i]
    if tally then
      for name in string.gmatch(tally, '[^\t]+') do adds[name] = (adds[name] or 0) + 1 end
    end
  end
end
redis.call('HDEL', KEYS[4], ARGV[1])
for name, count in pairs(adds) do redis.call('HINCRBY', KEYS[6], name, count) end
local done = redis.call('INCRBY', KEYS[5], removed)
return {removed, done}
