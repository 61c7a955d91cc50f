-- Give back the leases ARGV[1] holds on the sequence numbers ARGV[2..].
-- KEYS: leases.
for i = 2, #ARGV do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
