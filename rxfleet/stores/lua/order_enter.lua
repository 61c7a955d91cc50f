-- Submissions of a claim id enter the per-claim order in ingestion order.
-- KEYS: the clock, the run's set of waiting seqs, then one order key per submission.
-- ARGV: ttl seconds, then per submission: member ("run|seq|transaction"), seq.
-- ZADD NX: a resumed producer keeps a submission's first place. A submission with
-- another ahead of it goes in the run's set (the planner checks only those). Returns,
-- per submission, how many reversals or rebills (B2, B3) are ahead of it, or -1 when
-- nothing is ahead.
local ttl = tonumber(ARGV[1])
local out = {}
for i = 3, #KEYS do
  local member, seq = ARGV[2 * (i - 3) + 2], ARGV[2 * (i - 3) + 3]
  local key = KEYS[i]
  if not redis.call('ZSCORE', key, member) then
    redis.call('ZADD', key, redis.call('INCR', KEYS[1]), member)
  end
  redis.call('EXPIRE', key, ttl)
  local rank = redis.call('ZRANK', key, member)
  local ahead = -1
  if rank > 0 then
    ahead = 0
    for _, other in ipairs(redis.call('ZRANGE', key, 0, rank - 1)) do
      local tx = string.match(other, '|([^|]*)$')
      if tx == 'B2' or tx == 'B3' then ahead = ahead + 1 end
    end
    redis.call('SADD', KEYS[2], seq)
    redis.call('EXPIRE', KEYS[2], ttl)
  end
  out[#out + 1] = ahead
end
return out
