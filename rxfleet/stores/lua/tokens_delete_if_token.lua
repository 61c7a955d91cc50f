-- Invalidate the token only if it is still the one refused: field ARGV[2]
-- (access_token or token_digest) equals ARGV[1]; its expiry and ARGV[3], the reason,
-- stay for the rotation's audit record. KEYS: the token hash.
if redis.call('HGET', KEYS[1], ARGV[2]) == ARGV[1] then
  local old = redis.call('HGET', KEYS[1], 'expires_at') or '0'
  redis.call('HDEL', KEYS[1], 'access_token', 'token_digest')
  redis.call('HSET', KEYS[1], 'expires_at', '0', 'invalidated_expires_at', old,
             'invalidated_reason', ARGV[3])
  return 1
end
return 0
