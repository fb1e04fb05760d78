#!lua
-- Frees the slot a node holds (no effect if it holds none). ARGV: prefix, node.
local P, node = ARGV[1], ARGV[2]
local last = redis.call('GET', P .. 'node-slot:' .. node)
if not last then return 0 end
local key = P .. 'slot:' .. last
if redis.call('HGET', key, 'node') == node then redis.call('DEL', key) end
redis.call('DEL', P .. 'node-slot:' .. node)
return 1
