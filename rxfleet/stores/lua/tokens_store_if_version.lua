-- Store a fresh token only over the version the caller read (or none): a rotation
-- that lost the race never overwrites the winner's token.
-- KEYS: the token hash. ARGV: version read, token, expires_at, new version,
-- fetched_at, lifetime, token digest.
local current = redis.call('HGET', KEYS[1], 'version')
if (current or '0') ~= ARGV[1] and redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'access_token', ARGV[2], 'expires_at', ARGV[3],
           'version', ARGV[4], 'fetched_at', ARGV[5], 'lifetime', ARGV[6],
           'token_digest', ARGV[7])
return 1
