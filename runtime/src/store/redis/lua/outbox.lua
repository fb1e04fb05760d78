#!lua flags=no-writes
-- Unacknowledged outbox entries committed at or before `before`, by seq, at most `limit`.
-- ARGV: prefix, before, limit (> 0). Answers {{seq, at, topic, key or nil, payload, partition or
-- nil}...}.
local P = ARGV[1]
local before = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
local out = {}
for _, seq in ipairs(redis.call('ZRANGE', P .. 'outbox', 0, -1)) do
  local e = redis.call('HMGET', P .. 'outbox:' .. seq, 'at', 'topic', 'key', 'payload', 'partition')
  if e[1] and tonumber(e[1]) <= before then
    out[#out + 1] = {seq, e[1], e[2], e[3], e[4], e[5]}
    if #out >= limit then break end
  end
end
return out
