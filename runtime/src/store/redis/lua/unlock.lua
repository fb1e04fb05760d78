#!lua
-- Redlock release on one master: delete the lock record if `owner` holds it with one of the
-- given tokens or with none yet ('0'). ARGV: prefix, resource, owner, token, other token.
local P = ARGV[1]
local key = P .. 'lock:' .. ARGV[2]
local rec = redis.call('HMGET', key, 'owner', 'token')
if rec[1] == ARGV[3] and (rec[2] == ARGV[4] or rec[2] == ARGV[5] or rec[2] == '0') then
  redis.call('DEL', key)
  return 1
end
return 0
