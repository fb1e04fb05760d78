#!lua
-- Takes up to `asked` tokens from the token bucket `P rate:{name}`: a hash of `h` tokens held
-- (fractions included) and `t` when (server time, µs). It refills at `per_sec` tokens a second up
-- to `burst`, and an absent bucket is full. Time is the server's TIME, so clients with skewed
-- clocks agree. The key expires once the bucket would be full again (a second later, to be safe).
-- ARGV: prefix, name, per_sec (>= 1), burst (>= 1), asked (>= 0).
-- Answers {granted, µs until the missing tokens would have accrued (0 when none is missing)}.
local key = ARGV[1] .. 'rate:' .. ARGV[2]
local per_sec, burst, asked = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local held = burst
local rec = redis.call('HMGET', key, 'h', 't')
if rec[1] and rec[2] then
  local elapsed = math.max(0, now - tonumber(rec[2]))
  held = math.min(burst, tonumber(rec[1]) + elapsed * per_sec / 1000000)
end
local granted = math.min(asked, math.floor(held))
local left = held - granted
if granted > 0 then
  redis.call('HSET', key, 'h', string.format('%.17g', left), 't', string.format('%d', now))
  local full_in = math.ceil((burst - left) * 1000 / per_sec) + 1000
  redis.call('PEXPIRE', key, string.format('%d', full_in))
end
local wait = 0
if granted < asked then
  wait = math.max(1, math.ceil((asked - granted - left) * 1000000 / per_sec))
end
return {granted, wait}
