-- Lengthen the pause, never shorten it: atomic, or two workers told to wait at
-- once could both read "no pause" and the shorter SET could land last.
-- KEYS: the pause. ARGV: epoch milliseconds until which nobody sends; how many
-- milliseconds the key outlives that (a read begun before the end still finds it).
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if current < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PXAT', tonumber(ARGV[1]) + tonumber(ARGV[2]))
  return 1
end
return 0
