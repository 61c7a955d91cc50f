-- A send slot now, under the fleet's gateway rate (GCRA: a virtual scheduling time,
-- TAT, one interval after the last slot). A slot is only ever granted for now, on the
-- server's clock (TIME, microseconds): every host shares one schedule. A sender late
-- by up to the slack keeps the schedule (the next slot is not pushed back); later
-- than that, the slots it missed are gone: no catch-up burst.
-- KEYS: the TAT, the rate in force. ARGV: interval (us), slack (us), the rate (claims/s).
-- Returns {1, 0} when granted, {0, us until the next slot} when not.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, slack = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
redis.call('SET', KEYS[2], ARGV[3], 'EX', 60)
if tat > now then
  return {0, tat - now}
end
local after = math.max(tat, now - slack) + interval
redis.call('SET', KEYS[1], string.format('%.0f', after), 'PX', math.ceil((after - now) / 1000) + 1000)
return {1, 0}
