-- Take or renew a portal's sync lease (KEYS[1]) for holder ARGV[1], ARGV[2] ms:
-- 1 when ARGV[1] holds it now, 0 when another holder does.
local held = redis.call('GET', KEYS[1])
if held and held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
