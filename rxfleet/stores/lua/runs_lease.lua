-- A claim is sent by one holder at a time: take the lease of every sequence
-- number that is free or whose lease ran out. Says, for each: 1 granted,
-- 0 held by another, 2 gone (recorded meanwhile: nothing left to send).
-- Three commands whatever the window's size (a window is at most
-- RXFLEET_SUBMIT_INFLIGHT claims, far below the unpack limit).
-- KEYS: leases, work. ARGV: now (ms), holder, lease (ms), the seqs.
local now = tonumber(ARGV[1])
local mine = ARGV[2] .. '|' .. (now + tonumber(ARGV[3]))
local seqs = {unpack(ARGV, 4)}
local held = redis.call('HMGET', KEYS[1], unpack(seqs))
local work = redis.call('HMGET', KEYS[2], unpack(seqs))
local out, take = {}, {}
for i, seq in ipairs(seqs) do
  local ok = 1
  if not work[i] then
    ok = 2
  elseif held[i] then
    local owner, till = string.match(held[i], '^(.*)|(%d+)$')
    if owner ~= ARGV[2] and tonumber(till) > now then ok = 0 end
  end
  if ok == 1 then take[#take + 1] = seq; take[#take + 1] = mine end
  out[i] = ok
end
if #take > 0 then redis.call('HSET', KEYS[1], unpack(take)) end
return out
