#!lua
-- One commit of the thred store (docs/store.md, "The Redis adapter"): every check runs before
-- the first write, so a refused commit changes nothing.
--
-- ARGV: prefix, now, lease resource ('' = no lease), lease owner, lease token,
--   W, then W thred writes of 10: kind ('s' save | 'r' remove), id, expected version ('' = must
--     not exist), partition, state JSON, timer due ('' = no timer), timer JSON, listens ('1'|'0'),
--     participant count, participant ids (a JSON array; '' when the count is 0),
--   C, then C counter writes of 3: pattern id, expected version, counter JSON,
--   A, then A watermarks of 3: topic, partition, offset (decimal),
--   O, then O outbox records of 5: topic, has key ('1'|'0'), key, payload, partition ('' = the
--     key's).
-- Answers {'ok', seq...} | {'conflict', what} | {'fenced', newest token}.
local P = ARGV[1]
local now = tonumber(ARGV[2])

-- a > b for decimal strings without leading zeros (offsets may exceed a double's precision)
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end

-- The lease: the newest grant of the resource, by this owner, unexpired, not released.
local token = '0'
if ARGV[3] ~= '' then
  local fence = redis.call('HMGET', P .. 'fence:' .. ARGV[3], 'token', 'owner', 'exp')
  local newest = fence[1] or '0'
  if newest ~= ARGV[5] or fence[2] ~= ARGV[4] or not fence[3] or tonumber(fence[3]) <= now then
    return {'fenced', newest}
  end
  token = ARGV[5]
end

local W = tonumber(ARGV[6])
local tw = 7
local cw = tw + W * 10
local C = tonumber(ARGV[cw])
local aw = cw + 1 + C * 3
local A = tonumber(ARGV[aw])
local ow = aw + 1 + A * 3
local O = tonumber(ARGV[ow])

-- Checks, in commit order: a later write expects the version an earlier one produced.
local planned = {}
for i = 0, W - 1 do
  local o = tw + i * 10
  local id = ARGV[o + 1]
  local version = planned[id]
  if version == nil then
    version = tonumber(redis.call('HGET', P .. 'thred:' .. id, 'v') or '0')
  end
  local expected = ARGV[o + 2]
  if expected == '' then
    if version ~= 0 then return {'conflict', 'thred ' .. id} end
  elseif version == 0 or tonumber(expected) ~= version then
    return {'conflict', 'thred ' .. id}
  end
  if ARGV[o] == 's' then planned[id] = version + 1 else planned[id] = 0 end
end
local counters = {}
for i = 0, C - 1 do
  local o = cw + 1 + i * 3
  local id = ARGV[o]
  local version = counters[id]
  if version == nil then
    version = tonumber(redis.call('HGET', P .. 'counter:' .. id, 'v') or '0')
  end
  if tonumber(ARGV[o + 1]) ~= version then return {'conflict', 'counter ' .. id} end
  counters[id] = version + 1
end

-- The participant index: participants are only ever added to a thred, so its entries change
-- when the count does (field 'n' of the thred); a removed thred leaves the sets of the
-- participants its last state names.
local function add_participants(id, json)
  local ok, ids = pcall(cjson.decode, json)
  if not ok or type(ids) ~= 'table' then return end
  for _, p in ipairs(ids) do
    if type(p) == 'string' then redis.call('SADD', P .. 'participant:' .. p, id) end
  end
end

-- Writes.
for i = 0, W - 1 do
  local o = tw + i * 10
  local id = ARGV[o + 1]
  local key = P .. 'thred:' .. id
  local old = redis.call('HMGET', key, 'v', 'p', 'n')
  if old[2] then redis.call('ZREM', P .. 'timers:' .. old[2], id) end
  if ARGV[o] == 's' then
    local version = tonumber(old[1] or '0') + 1
    local partition = ARGV[o + 3]
    local count = ARGV[o + 8]
    if (old[3] or '0') ~= count then add_participants(id, ARGV[o + 9]) end
    redis.call('DEL', key)
    if ARGV[o + 5] == '' then
      redis.call('HSET', key, 's', ARGV[o + 4], 'v', version, 't', token, 'p', partition, 'n', count)
    else
      redis.call('HSET', key, 's', ARGV[o + 4], 'v', version, 't', token, 'p', partition, 'n', count,
        'd', ARGV[o + 5], 'm', ARGV[o + 6])
      redis.call('ZADD', P .. 'timers:' .. partition, ARGV[o + 5], id)
    end
    redis.call('ZADD', P .. 'live', 0, id)
    if ARGV[o + 7] == '1' then
      if not redis.call('ZSCORE', P .. 'unbound', id) then
        redis.call('ZADD', P .. 'unbound', redis.call('INCR', P .. 'seq:unbound'), id)
      end
    else
      redis.call('ZREM', P .. 'unbound', id)
    end
  elseif old[1] then
    local ok, state = pcall(cjson.decode, redis.call('HGET', key, 's') or '')
    if ok and type(state) == 'table' and type(state.thredContext) == 'table'
        and type(state.thredContext.participantIds) == 'table' then
      for _, p in ipairs(state.thredContext.participantIds) do
        if type(p) == 'string' then redis.call('SREM', P .. 'participant:' .. p, id) end
      end
    end
    redis.call('DEL', key)
    redis.call('ZREM', P .. 'live', id)
    redis.call('ZREM', P .. 'unbound', id)
  end
end
for i = 0, C - 1 do
  local o = cw + 1 + i * 3
  redis.call('HSET', P .. 'counter:' .. ARGV[o], 'v', tonumber(ARGV[o + 1]) + 1, 'c', ARGV[o + 2])
end
for i = 0, A - 1 do
  local o = aw + 1 + i * 3
  local field = ARGV[o + 1] .. ':' .. ARGV[o]
  local current = redis.call('HGET', P .. 'applied', field)
  if not current or greater(ARGV[o + 2], current) then
    redis.call('HSET', P .. 'applied', field, ARGV[o + 2])
  end
end
-- The outbox: the batch's seqs taken at once, one HSET per record, the index added in chunks
-- (few calls per record: they are most of what a commit costs Redis).
local out = {'ok'}
if O > 0 then
  local first = redis.call('INCRBY', P .. 'seq:outbox', O) - O + 1
  local index = {}
  for i = 0, O - 1 do
    local o = ow + 1 + i * 5
    local seq = first + i
    local fields = {'at', ARGV[2], 'topic', ARGV[o], 'payload', ARGV[o + 3]}
    if ARGV[o + 1] == '1' then
      fields[#fields + 1] = 'key'
      fields[#fields + 1] = ARGV[o + 2]
    end
    if ARGV[o + 4] ~= '' then
      fields[#fields + 1] = 'partition'
      fields[#fields + 1] = ARGV[o + 4]
    end
    redis.call('HSET', P .. 'outbox:' .. seq, unpack(fields))
    index[#index + 1] = seq
    index[#index + 1] = seq
    -- unpack has a stack limit: add at most 500 members per ZADD.
    if #index >= 1000 or i == O - 1 then
      redis.call('ZADD', P .. 'outbox', unpack(index))
      index = {}
    end
    out[#out + 1] = seq
  end
end
return out
