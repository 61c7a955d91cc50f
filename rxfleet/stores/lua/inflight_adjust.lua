-- One sender's period (about a round trip's worth of its answers) adjusts the fleet's
-- in-flight limit; times are the Redis server's (TIME), so every host shares them.
-- KEYS: the limit (hash: limit, base, cut_at, found), the senders (sorted set by last report).
-- ARGV: sender, sent, overloaded, in flight at the first overload, median latency of
--       the other answers (us, -1: none), wanted more (0/1), initial limit, ceiling,
--       fleet rate (claims/s, 0: none), idle seconds the state outlives.
-- Returns {the fleet's limit, senders reporting within the last SEEN_MS}.
local SEEN_MS, TOLERANCE, SLACK_MS, KEEP, DRIFT_UP, SLOW_START = 10000, 2.0, 50, 0.9, 0.1, 0.25
local FLOOR = 8  -- requests each sender keeps in flight at least (a refusal of one claim
                 -- whatever the load must not shut the fleet down to one at a time)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local sent, over, at_over = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local rtt, wanted = tonumber(ARGV[5]) / 1000, ARGV[6] == '1'
local initial, ceiling, rate = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - SEEN_MS)
local n = redis.call('ZCARD', KEYS[2])
local s = redis.call('HMGET', KEYS[1], 'limit', 'base', 'cut_at', 'found')
local limit = tonumber(s[1]) or initial * n
local base = tonumber(s[2])
local cut_at = tonumber(s[3]) or 0
local found = tonumber(s[4]) or 0  -- where the last cut was made from (0: none yet)
if rtt >= 0 and base == nil then base = rtt end
local queued = rtt >= 0 and rtt > base * TOLERANCE + SLACK_MS
if over > 0 or queued then
  if now - cut_at >= math.max(base or 0, 10) then  -- one cut a round trip, fleet-wide
    if over > 0 then limit = math.min(limit, at_over * n) end  -- what the gateway took
    found, cut_at, limit = limit, now, limit * KEEP
  end
elseif wanted then
  if limit < found * KEEP * KEEP or found == 0 then
    limit = limit + sent * SLOW_START  -- far below the last cut, or none yet: x1.25 a round trip
  else
    limit = limit + sent / limit  -- near it: one more a round trip, fleet-wide
  end
end
if rtt >= 0 then
  if rtt < base then base = rtt else base = base + (rtt - base) * DRIFT_UP end
end
if rate > 0 and base ~= nil then  -- more in flight than the rate fills in two round trips
  ceiling = math.min(ceiling, math.max(n, rate * base / 500))
end
limit = math.min(ceiling, math.max(FLOOR * n, limit))
redis.call('HSET', KEYS[1], 'limit', tostring(limit), 'base', tostring(base or 0),
           'cut_at', tostring(cut_at), 'found', tostring(found))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[10]))
redis.call('PEXPIRE', KEYS[2], SEEN_MS)
return {math.floor(limit), n}
