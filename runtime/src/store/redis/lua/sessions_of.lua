#!lua flags=no-writes
-- The sessions of a participant in order of addition. ARGV: prefix, participant.
-- Answers {id, node, id, node, ...}.
local P = ARGV[1]
local out = {}
for _, id in ipairs(redis.call('ZRANGE', P .. 'sessions:' .. ARGV[2], 0, -1)) do
  local node = redis.call('HGET', P .. 'session:' .. id, 'node')
  if node then
    out[#out + 1] = id
    out[#out + 1] = node
  end
end
return out
