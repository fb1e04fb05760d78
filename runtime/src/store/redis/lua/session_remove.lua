#!lua
-- Forgets a session (no effect if unknown). ARGV: prefix, session id.
local P = ARGV[1]
local key = P .. 'session:' .. ARGV[2]
local participant = redis.call('HGET', key, 'participant')
if not participant then return 0 end
redis.call('ZREM', P .. 'sessions:' .. participant, ARGV[2])
redis.call('DEL', key)
return 1
