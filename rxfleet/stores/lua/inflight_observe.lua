-- One window's outcome onto the fleet's in-flight limit for one gateway (AIMD with a
-- latency gradient), and this process's heartbeat; atomic, so every submit worker
-- moves the same limit. Times from the server's clock (TIME): no skew between hosts.
-- KEYS: the limit's hash, the live processes (sorted set: process -> last seen ms).
-- ARGV: process, answered (not throttled), throttled (429/503), mean latency of the
-- answered (ms, -1: none), full (1: the process kept its share in flight), floor,
-- ceiling, rate (claims/s, 0: none), start, the constants (live ms, ttl ms, tolerance,
-- noise ms, beta, beta for latency, drift, rate headroom).
-- Returns: the limit (text) and the number of live processes.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local proc, ok, throttled = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local latency, full = tonumber(ARGV[4]), ARGV[5] == '1'
local floor, ceiling, rate = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local live, ttl, tolerance = tonumber(ARGV[10]), tonumber(ARGV[11]), tonumber(ARGV[12])
local noise, beta, beta_latency = tonumber(ARGV[13]), tonumber(ARGV[14]), tonumber(ARGV[15])
local drift, headroom = tonumber(ARGV[16]), tonumber(ARGV[17])

redis.call('ZADD', KEYS[2], now, proc)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - live)
local procs = redis.call('ZCARD', KEYS[2])

local h = redis.call('HMGET', KEYS[1], 'limit', 'base', 'cut_at', 'slow', 'cuts')
local limit = tonumber(h[1]) or tonumber(ARGV[9])
local base = tonumber(h[2])
local cut_at = tonumber(h[3]) or 0
local slow = h[4] ~= '0'
local cuts = tonumber(h[5]) or 0

if latency >= 0 then  -- the baseline: the least latency seen, drifting up slowly
  if base == nil or latency < base then base = latency else base = base + (latency - base) * drift end
end
local rising = latency >= 0 and latency > tolerance * math.max(base, noise)
if throttled > 0 or rising then
  -- one cut per two round trips: windows sent before a cut still report its cause
  if now - cut_at >= 2 * math.max(latency, base or 0, noise) then
    local factor = beta_latency
    if throttled > 0 then factor = math.max(0.6, beta * ok / (ok + throttled)) end
    limit, cut_at, slow, cuts = limit * factor, now, false, cuts + 1
  end
elseif full and ok > 0 then
  -- slow start: x1.25 a round trip; then +1 a round trip (+1% of the limit above 100)
  if slow then limit = limit + ok / 4 else limit = limit + ok / limit * math.max(1, limit / 100) end
end

local cap = ceiling
if rate > 0 and base ~= nil then  -- more in flight than rate x latency only queues
  cap = math.min(cap, rate * math.max(base, noise) / 1000 * headroom)
end
limit = math.max(floor, math.min(cap, limit))
redis.call('HSET', KEYS[1], 'limit', tostring(limit), 'base', tostring(base or ''),
  'cut_at', cut_at, 'slow', slow and 1 or 0, 'cuts', cuts, 'procs', procs)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {tostring(limit), procs}
