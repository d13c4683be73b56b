-- A token bucket in Lua, of the kind applications run today: the baseline
-- that `bench/run` measures CHARON.RATE against (throughput and memory).
--
--   EVALSHA <sha> 1 key capacity refill period_ms [cost]
--
-- The bucket is a hash {tokens, ts}; tokens are refilled continuously at
-- refill / period_ms per millisecond (floating point, as such scripts do),
-- a request takes `cost` tokens when it can, and the key expires when the
-- bucket would be full again. The reply has CHARON.RATE's shape:
-- {limited, limit, remaining, retry_after_ms, reset_after_ms}.
-- Like CHARON.RATE, a limited request writes nothing.

local key = KEYS[1]
local capacity = tonumber(ARGV[1])
local refill = tonumber(ARGV[2])
local period_ms = tonumber(ARGV[3])
local cost = tonumber(ARGV[4] or '1')

local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)

local state = redis.call('HMGET', key, 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end

local rate = refill / period_ms
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate)
end

local limited = 0
local retry_after = -1
if tokens >= cost then
  tokens = tokens - cost
  local reset_after = math.ceil((capacity - tokens) / rate)
  if cost > 0 then
    redis.call('HSET', key, 'tokens', tokens, 'ts', now)
    redis.call('PEXPIRE', key, math.max(reset_after, 1))
  end
  return {limited, capacity, math.floor(tokens), retry_after, reset_after}
end

limited = 1
if cost <= capacity then
  retry_after = math.ceil((cost - tokens) / rate)
end
return {limited, capacity, math.floor(tokens), retry_after,
        math.ceil((capacity - tokens) / rate)}
