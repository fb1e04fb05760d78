#!lua
-- For each participant, the slots of the nodes holding its sessions, where the node holds a live
-- slot at `now`. Sessions of a node with no slot record left (gone longer than the records'
-- grace) are forgotten.
-- ARGV: prefix, now, participant... Answers one array of slot numbers per participant.
local P, now = ARGV[1], tonumber(ARGV[2])
local live = {}
local function slot_of(node)
  if live[node] == nil then
    live[node] = false
    local k = redis.call('GET', P .. 'node-slot:' .. node)
    if k then
      local h = redis.call('HMGET', P .. 'slot:' .. k, 'node', 'exp')
      if h[1] == node and tonumber(h[2]) > now then live[node] = tonumber(k) end
    else
      live[node] = 'gone'
    end
  end
  return live[node]
end
local out = {}
for i = 3, #ARGV do
  local slots, seen = {}, {}
  local zkey = P .. 'sessions:' .. ARGV[i]
  for _, id in ipairs(redis.call('ZRANGE', zkey, 0, -1)) do
    local node = redis.call('HGET', P .. 'session:' .. id, 'node')
    if node then
      local k = slot_of(node)
      if k == 'gone' then
        redis.call('ZREM', zkey, id)
        redis.call('DEL', P .. 'session:' .. id)
      elseif k and not seen[k] then
        seen[k] = true
        slots[#slots + 1] = k
      end
    end
  end
  table.sort(slots)
  out[#out + 1] = slots
end
return out
