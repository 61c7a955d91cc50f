-- Publish formulary changes as one step from version ARGV[1] to ARGV[2]: the entries
-- and the version move together, and only from the version they were read after, so
-- two webhook processes never leave Redis with a later version but an earlier entry.
-- KEYS: entries, version. ARGV: from, to, then (ndc11, entry) pairs in version order.
-- Returns -1 when published (or already there), else the version Redis holds.
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local to = tonumber(ARGV[2])
if current >= to then return -1 end
if current ~= tonumber(ARGV[1]) then return current end
local fields = {}
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
for slice in slices(fields, UNPACK_SLICE) do
  redis.call('HSET', KEYS[1], unpack(slice))
end
redis.call('SET', KEYS[2], ARGV[2])
return -1
