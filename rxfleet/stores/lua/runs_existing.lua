-- For each sequence number in ARGV: 1 when its record is in KEYS[1] (work), else 0.
local out = {}
for slice in slices(ARGV, UNPACK_SLICE) do
  for _, value in ipairs(redis.call('HMGET', KEYS[1], unpack(slice))) do
    out[#out + 1] = value and 1 or 0
  end
end
return out
