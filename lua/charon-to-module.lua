--[[
Moves buckets of the Charon Functions library (lua/charon.lua) into the
Charon module, in place. Run it on a server with the module loaded, with the
keys to convert (in a cluster, keys of one slot per call):

  redis-cli --eval lua/charon-to-module.lua key1 key2 ...
  EVALSHA <sha> <numkeys> key1 key2 ...

Each library bucket (a hash: t, n, c<i>, r<i>, p<i>, u<i>) becomes the module
bucket with the same limits, levels and last update, set with
CHARON.SETSTATE (readable form: tokens = floor(u / p), fraction = u - tokens * p,
negative tokens for outstanding reservations), so CHARON.RATE, PEEK and
REFUND answer what the library would have, and the key expires at the same
moment. A key that does not exist (a full bucket) or already holds a module
bucket is left as it is. Every key is checked before any is changed: a key of
another type, or a hash that is no valid library bucket, is an error and
nothing is converted.

Replies the number of keys converted. Atomic per call; it replicates as its
effects (DEL and CHARON.SETSTATE).
]]

if redis.replicate_commands then
  redis.replicate_commands()
end

-- A decimal integer within 2^53 as the library writes it, or nil.
local function integer(s)
  if not s or #s > 17 or not (string.find(s, '^%-?[1-9]%d*$') or s == '0') then
    return nil
  end
  return tonumber(s)
end

-- A refill: any positive 64-bit integer, kept as its digits.
local function refill(s)
  if not s or not string.find(s, '^[1-9]%d*$') then
    return nil
  end
  if #s > 19 or (#s == 19 and s > '9223372036854775807') then
    return nil
  end
  return s
end

local states = {}
for number, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key).ok
  if kind == 'hash' then
    local v = redis.call('HGETALL', key)
    local h = {}
    for i = 1, #v, 2 do
      h[v[i]] = v[i + 1]
    end
    local t, n = integer(h.t), integer(h.n)
    local bad = 'ERR key #' .. number .. ' is no bucket of the Charon library (lua/charon.lua): nothing converted'
    if not t or t < 0 or not n or n < 1 or n > 16 then
      return redis.error_reply(bad)
    end
    local args = { key, string.format('%d', t), string.format('%d', n) }
    for i = 1, n do
      local c, r, p, u = integer(h['c' .. i]), refill(h['r' .. i]), integer(h['p' .. i]), integer(h['u' .. i])
      if not (c and r and p and u) or c < 1 or p < 1 or c * p > 4503599627370496 then
        return redis.error_reply(bad)
      end
      if u > c * p or c * p - u > 4503599627370496 then
        return redis.error_reply(bad)
      end
      local tokens = math.floor(u / p)
      args[#args + 1] = string.format('%d', c)
      args[#args + 1] = r
      args[#args + 1] = string.format('%d', p)
      args[#args + 1] = string.format('%d', tokens)
      args[#args + 1] = string.format('%d', u - tokens * p)
    end
    states[#states + 1] = args
  elseif kind ~= 'none' and kind ~= 'charon-tb' then
    return redis.error_reply('ERR key #' .. number .. ' holds a ' .. kind .. ', no bucket: nothing converted')
  end
end
for _, args in ipairs(states) do
  redis.call('DEL', args[1])
  redis.call('CHARON.SETSTATE', unpack(args))
end
return #states
