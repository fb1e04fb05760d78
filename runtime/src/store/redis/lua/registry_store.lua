-- Stores the pattern registry document if its version is still the one expected.
-- KEYS[1] the registry document, KEYS[2] its version; ARGV[1] the expected version, ARGV[2] the
-- document. Answers the new version, or -1 (the registry changed since it was read).
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
if current ~= tonumber(ARGV[1]) then
  return -1
end
redis.call('SET', KEYS[1], ARGV[2])
return redis.call('INCR', KEYS[2])
