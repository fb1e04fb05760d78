#!lua
-- Gives a lease up on the state server: if `token` is the newest grant and `owner` holds it,
-- forget the holder (the token stays, so later grants take higher ones).
-- ARGV: prefix, resource, owner, token. Answers 1 if released.
local P = ARGV[1]
local key = P .. 'fence:' .. ARGV[2]
local rec = redis.call('HMGET', key, 'token', 'owner')
if rec[1] == ARGV[4] and rec[2] == ARGV[3] then
  redis.call('HDEL', key, 'owner', 'exp')
  return 1
end
return 0
