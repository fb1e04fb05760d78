#!lua
-- Redlock, last step of a new grant, on each master that locked: raise the token counter to the
-- granted token and put the token in the lock record if `owner` still holds it unexpired.
-- ARGV: prefix, resource, owner, token, now. Answers 1 if the record was still the owner's.
local P = ARGV[1]
local key = P .. 'lock:' .. ARGV[2]
local ckey = P .. 'lock-token:' .. ARGV[2]
local counter = redis.call('GET', ckey)
if not counter or #ARGV[4] > #counter or (#ARGV[4] == #counter and ARGV[4] > counter) then
  redis.call('SET', ckey, ARGV[4])
end
local rec = redis.call('HMGET', key, 'owner', 'exp')
if rec[1] == ARGV[3] and rec[2] and tonumber(rec[2]) > tonumber(ARGV[5]) then
  redis.call('HSET', key, 'token', ARGV[4])
  return 1
end
return 0
