#!lua
-- The grant's record on the state server, which commits check (the fence):
-- {token: newest token granted, owner, exp} while held; release drops owner and exp.
-- ARGV: prefix, resource, owner, now, exp, mode, token.
-- mode 'renew': extend the holder's lease of `token` if it is still the newest, held by `owner`
--   and unexpired. mode 'new': grant a new token, the larger of `token` (the masters' counters
--   + 1) and the newest + 1, unless another owner holds an unexpired lease.
-- Answers {1, token} when granted, {0, newest token} when refused.
local P = ARGV[1]
local key = P .. 'fence:' .. ARGV[2]
local rec = redis.call('HMGET', key, 'token', 'owner', 'exp')
local newest = rec[1] or '0'
local live = rec[3] and tonumber(rec[3]) > tonumber(ARGV[4])
if ARGV[6] == 'renew' then
  if newest == ARGV[7] and rec[2] == ARGV[3] and live then
    redis.call('HSET', key, 'exp', ARGV[5])
    return {1, newest}
  end
  return {0, newest}
end
if live and rec[2] ~= ARGV[3] then return {0, newest} end
local token = math.max(tonumber(newest) + 1, tonumber(ARGV[7]))
redis.call('HSET', key, 'token', string.format('%d', token), 'owner', ARGV[3], 'exp', ARGV[5])
return {1, string.format('%d', token)}
