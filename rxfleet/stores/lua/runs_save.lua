-- A link writes back only the records still there: a claim retired meanwhile (a
-- late, redelivered link) or lost with a Redis restarted empty is never brought
-- back as a record without its vault blob, its batch or its chain.
-- KEYS: work. ARGV: (seq, record) pairs.
for slice in slices(ARGV, UNPACK_SLICE) do
  local seqs = {}
  for i = 1, #slice, 2 do seqs[#seqs + 1] = slice[i] end
  local present = redis.call('HMGET', KEYS[1], unpack(seqs))
  local write = {}
  for i, seq in ipairs(seqs) do
    if present[i] then
      write[#write + 1] = seq
      write[#write + 1] = slice[2 * i]
    end
  end
  if #write > 0 then redis.call('HSET', KEYS[1], unpack(write)) end
end
return 1
