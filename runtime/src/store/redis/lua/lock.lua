#!lua
-- Redlock, first step, on one master: lock the resource for `owner` unless another owner holds
-- an unexpired lock. Expiry is by the store clock (`now`, `exp`, epoch ms); PEXPIRE only
-- removes long-dead records.
-- ARGV: prefix, resource, owner, now, exp, gc ms.
-- Answers {status, token of the record, token counter}: status 0 = held by another owner,
-- 1 = already held by `owner` with a granted token (expiry extended), 2 = locked anew (token
-- to be written by the grant).
local P = ARGV[1]
local key = P .. 'lock:' .. ARGV[2]
local counter = redis.call('GET', P .. 'lock-token:' .. ARGV[2]) or '0'
local rec = redis.call('HMGET', key, 'owner', 'token', 'exp')
local live = rec[3] and tonumber(rec[3]) > tonumber(ARGV[4])
if live and rec[1] ~= ARGV[3] then return {0, rec[2] or '0', counter} end
if live and rec[2] and rec[2] ~= '0' then
  redis.call('HSET', key, 'exp', ARGV[5])
  redis.call('PEXPIRE', key, ARGV[6])
  return {1, rec[2], counter}
end
redis.call('DEL', key)
redis.call('HSET', key, 'owner', ARGV[3], 'token', '0', 'exp', ARGV[5])
redis.call('PEXPIRE', key, ARGV[6])
return {2, '0', counter}
