#!lua
-- Grants a node a delivery slot: the one it holds (renewed), else the one it held last if free,
-- else the lowest free one. Slot k is `P slot:{k}` {node, exp}; the node's last slot is
-- `P node-slot:{node}`. Expiry is by `now` (the store clock); the keys themselves are removed by
-- the server `grace` ms after they lapse (housekeeping only).
-- ARGV: prefix, node, slots, now, ttl, grace. Answers {slot, renewed (0/1)}, or {-1, 0} when
-- every slot is held.
local P, node = ARGV[1], ARGV[2]
local slots, now, ttl, grace = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function holder(k)
  local h = redis.call('HMGET', P .. 'slot:' .. k, 'node', 'exp')
  if h[1] and tonumber(h[2]) > now then return h[1] end
  return nil
end
local function grant(k, renewed)
  local key = P .. 'slot:' .. k
  redis.call('HSET', key, 'node', node, 'exp', now + ttl)
  redis.call('PEXPIRE', key, ttl + grace)
  redis.call('SET', P .. 'node-slot:' .. node, k, 'PX', ttl + grace)
  return {k, renewed}
end
local last = tonumber(redis.call('GET', P .. 'node-slot:' .. node))
if last and last < slots then
  local h = holder(last)
  if h == node then return grant(last, 1) end
  if not h then return grant(last, 0) end
end
for k = 0, slots - 1 do
  if not holder(k) then return grant(k, 0) end
end
return {-1, 0}
