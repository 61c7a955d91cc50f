-- Invalidate the token only if it is still the one refused: field ARGV[2]
-- (access_token or token_digest) equals ARGV[1]. KEYS: the token hash.
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'access_token', 'token_digest')
  redis.call('HSET', KEYS[1], 'expires_at', '0')
  return 1
end
return 0
