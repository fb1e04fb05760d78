#!lua
-- Records (or replaces) a session; remembers its participant in first-seen order.
-- ARGV: prefix, session id, participant, node.
local P = ARGV[1]
local key = P .. 'session:' .. ARGV[2]
local old = redis.call('HGET', key, 'participant')
if old then redis.call('ZREM', P .. 'sessions:' .. old, ARGV[2]) end
local seq = redis.call('INCR', P .. 'seq:session')
redis.call('HSET', key, 'participant', ARGV[3], 'node', ARGV[4], 'seq', seq)
redis.call('ZADD', P .. 'sessions:' .. ARGV[3], seq, ARGV[2])
if not redis.call('ZSCORE', P .. 'participants', ARGV[3]) then
  redis.call('ZADD', P .. 'participants', redis.call('INCR', P .. 'seq:participant'), ARGV[3])
end
return 1
