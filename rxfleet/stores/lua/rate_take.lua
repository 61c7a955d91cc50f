-- Up to n send slots under the fleet's rate (GCRA: a virtual scheduling time, TAT,
-- that every slot moves on by one interval), never more than a horizon ahead.
-- Times from the server's clock (TIME, microseconds): every host shares one schedule.
-- KEYS: the TAT. ARGV: n, interval (us), horizon (us).
-- Returns: slots granted, microseconds from now to the first, and (none granted)
-- microseconds to wait before asking again.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n, interval, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local room = math.floor((now + horizon - tat) / interval)
local granted = math.max(0, math.min(n, room))
if granted == 0 then
  return {0, 0, tat + interval - now - horizon}
end
local after = tat + granted * interval
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1000)
return {granted, tat - now, 0}
