#!lua flags=no-writes
-- Timers of a partition due at or before `now`, by (due, thred id), at most `limit`.
-- ARGV: prefix, partition, now, limit (> 0). Answers the timers' JSON.
local P = ARGV[1]
local ids = redis.call('ZRANGEBYSCORE', P .. 'timers:' .. ARGV[2], '-inf', ARGV[3], 'LIMIT', 0, ARGV[4])
local out = {}
for _, id in ipairs(ids) do
  local timer = redis.call('HGET', P .. 'thred:' .. id, 'm')
  if timer then out[#out + 1] = timer end
end
return out
