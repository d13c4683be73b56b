#!lua name=charon
--[[
Charon's token bucket as a Redis Functions library, for servers where modules
cannot be loaded. It registers the module's commands as functions, taking the
same arguments after the key and answering the same replies and errors:

  FCALL charon_rate    1 key capacity refill period [cost] [LIMIT capacity refill period]...
  FCALL charon_peek    1 key [cost]                 (no-writes: FCALL_RO works on replicas)
  FCALL charon_refund  1 key tokens
  FCALL charon_reserve 1 key capacity refill period [cost] [LIMIT ...]... MAXWAIT ms

Loading: `FUNCTION LOAD REPLACE "$(cat charon.lua)"` (Redis 7+, Valkey).
On Redis 6.2 (no Functions) the same file without its first line is an EVAL
script whose first argument names the function:

  sed 1d charon.lua | redis-cli -x SCRIPT LOAD          -> sha
  EVALSHA sha 1 key charon_rate capacity refill period [cost] ...

Nothing else differs between the two forms: the first line is the only line
the EVAL form drops, and the dispatch below picks the form by whether
`redis.register_function` exists.

Arithmetic. A band's level is kept, as in the module, in units of
1/period_ms of a token, so refilling adds exactly `refill` units per
millisecond and nothing is ever rounded while time passes. Lua numbers are
doubles, exact for integers up to 2^53; the script keeps every value it
computes within 2^52 units of zero, where division rounds exactly too. Its
range (refused with an error, never computed approximately):

  - capacity * period_ms <= 2^52 (4,503,599,627,370,496) for every limit:
    `ERR limit is out of range for the script: capacity times period in ms must be at most 2^52`
    (a limit the module refuses as well gets the module's error:
    `ERR limit is out of range: refilling its capacity would take more than 2^62 ms`);
  - a band is never more than 2^52 units below full: a reservation, or a
    change of limits on a bucket holding reservations, that would take a
    band deeper is refused, and nothing changes:
    `ERR reservation is out of range for the script: a band would be more than 2^52 units (1/period_ms of a token) below full`;
  - refill, cost, tokens and MAXWAIT take any value the module accepts.

So every reply time is at most 2^52 ms, and the key's expiry fits too.

State: one hash per key (never mixed with the module's `charon-tb` values):

  t       updated_at: server time in ms (TIME: sec*1000 + floor(usec/1000))
  n       the number of bands, 1 to 16
  c<i>    band i's capacity          (i = 1..n)
  r<i>    band i's refill
  p<i>    band i's period in ms
  u<i>    band i's level at t, in units of 1/p<i> of a token: whole tokens
          floor(u/p), fraction u - p*floor(u/p); below 0 while reservations
          are outstanding; at most c*p (full)

All are decimal integers. A full bucket is no key: the key expires (PEXPIREAT
t + the longest time until a band is full) exactly when every band would be
full, and a refund that fills the bucket deletes it. A hash without valid
`t`, `n` and band fields is not a bucket: WRONGTYPE, like any other type.

Writes replicate as their effects (HSET, HDEL, PEXPIREAT, DEL), never as the
decision: a replica or an AOF replay never reads its own clock. Every
argument and the stored hash are validated before the first write; calls
that take nothing write nothing.

Errors besides the module's own: `ERR wrong number of arguments for
'<function>' command` (also when the number of keys is not 1), and in the
EVAL form `ERR unknown function: ...` when the first argument names none.
]]

--[[
How the code is laid out, for speed. In the EVAL form this file runs on
every call, and Lua 5.1 pays for each local a new function captures: so there
are few functions, they capture little, constants and error texts are
literals, and standard functions are looked up where they are used. In the
Functions form the file runs once, and each distinct `capacity refill period`
is parsed once (a bounded cache). The common call (one band, parameters as
stored) reads the hash with one HMGET and writes it with one HSET and one
PEXPIREAT.

Numbers: 4503599627370496 is 2^52, the range every level and time stays in.
Integers go to redis.call as Lua numbers: servers write integral numbers
exactly (older ones with "%.17g", exact up to 2^53; newer ones as integers).
]]

-------------------------------------------------------------------- parsing

-- An integer argument as Redis parses it (string2ll: base 10, an optional
-- '-', no '+', no leading zeros, no spaces, within 64 bits): its value, or
-- nil. Beyond 2^53 the value is rounded; the range rules make sure a rounded
-- value only ever meets comparisons that rounding cannot flip.
local function integer(s)
  local find = string.find
  if #s < 16 then
    if find(s, '^%-?[1-9]%d*$') then
      return tonumber(s)
    end
    if s == '0' then
      return 0
    end
    return nil
  end
  if not find(s, '^%-?[1-9]%d*$') then
    return nil
  end
  local digits, max = s, '9223372036854775807'
  if string.byte(s, 1) == 45 then
    digits, max = string.sub(s, 2), '9223372036854775808'
  end
  if #digits > 19 or (#digits == 19 and digits > max) then
    return nil
  end
  return tonumber(s)
end

-- Whether the module too refuses a limit of valid integers: refilling its
-- capacity from empty would take more than 2^62 ms, capacity * period_ms >
-- refill * 2^62. Exact decimal arithmetic (base 10^7 limbs, least
-- significant first, every partial sum below 2^53), on the way to an error
-- only.
local function module_refuses(cs, rs, count, per_unit)
  local floor, sub = math.floor, string.sub
  local function big(digits)
    local limbs, i = {}, #digits
    while i >= 1 do
      local j = i - 6
      if j < 1 then
        j = 1
      end
      limbs[#limbs + 1] = tonumber(sub(digits, j, i))
      i = j - 1
    end
    return limbs
  end
  local function mul(a, b)
    local out = {}
    for i = 1, #a + #b do
      out[i] = 0
    end
    for i = 1, #a do
      local carry, j = 0, 1
      while j <= #b or carry > 0 do
        local x = out[i + j - 1] + a[i] * (b[j] or 0) + carry
        carry = floor(x / 10000000)
        out[i + j - 1] = x - carry * 10000000
        j = j + 1
      end
    end
    while #out > 1 and out[#out] == 0 do
      out[#out] = nil
    end
    return out
  end
  local full = mul(big(cs), mul(big(count), big(string.format('%d', per_unit))))
  local bound = mul(big(rs), big('4611686018427387904'))
  if #full ~= #bound then
    return #full > #bound
  end
  for i = #full, 1, -1 do
    if full[i] ~= bound[i] then
      return full[i] > bound[i]
    end
  end
  return false
end

-- One `capacity refill period` group, as a limit record:
--   { capacity, refill, period_ms as stored (canonical strings),
--     capacity, refill, period_ms, full level capacity * period_ms }
-- or nil and the error.
local function limit(cs, rs, ps)
  -- Short positive integers (nearly every argument) take the quick test.
  local find, tonumber = string.find, tonumber
  local positive = '^[1-9]%d*$'
  local c = #cs < 16 and find(cs, positive) and tonumber(cs) or integer(cs)
  if not c or c < 1 then
    return nil, 'ERR capacity must be a positive integer'
  end
  local r = #rs < 16 and find(rs, positive) and tonumber(rs) or integer(rs)
  if not r or r < 1 then
    return nil, 'ERR refill must be a positive integer'
  end
  -- The period: `1500`, `1500ms`, `30s`, `5m`, `1h`, `7d`, units in any
  -- case; `max` is the largest count the unit allows within 2^63-1 ms.
  local bad = 'ERR period must be a positive integer of milliseconds, optionally with a unit: ms, s, m, h or d'
  local count, unit = ps, ''
  if not (#ps < 16 and find(ps, positive)) then
    count, unit = string.match(ps, '^([%d%-]*)(.*)$')
  end
  local per_unit, max = 1, nil
  if unit ~= '' then
    unit = string.lower(unit)
    if unit == 's' then
      per_unit, max = 1000, '9223372036854775'
    elseif unit == 'm' then
      per_unit, max = 60000, '153722867280912'
    elseif unit == 'h' then
      per_unit, max = 3600000, '2562047788015'
    elseif unit == 'd' then
      per_unit, max = 86400000, '106751991167'
    elseif unit ~= 'ms' then
      return nil, bad
    end
  end
  local n = #count < 16 and find(count, positive) and tonumber(count) or integer(count)
  if not n or n < 1 then
    return nil, bad
  end
  if max and (#count > #max or (#count == #max and count > max)) then
    return nil, 'ERR period is out of range'
  end
  local p = n * per_unit
  if c * p > 4503599627370496 then
    if module_refuses(cs, rs, count, per_unit) then
      return nil, 'ERR limit is out of range: refilling its capacity would take more than 2^62 ms'
    end
    return nil, 'ERR limit is out of range for the script: capacity times period in ms must be at most 2^52'
  end
  if unit ~= '' then
    ps = string.format('%d', p)
  end
  return { cs, rs, ps, c, r, p, c * p }
end

-- Limit records by their three argument strings, in the Functions form
-- (where the file runs once); at most `CACHED` of them.
local cache, cached = nil, 0
local CACHED = 1000

local function cached_limit(cs, rs, ps)
  if not cache then
    return limit(cs, rs, ps)
  end
  local by_refill = cache[cs]
  local by_period = by_refill and by_refill[rs]
  local record = by_period and by_period[ps]
  if record then
    return record
  end
  local err
  record, err = limit(cs, rs, ps)
  if record then
    if cached >= CACHED then
      cache, cached = {}, 0
    end
    by_refill = cache[cs] or {}
    cache[cs] = by_refill
    by_period = by_refill[rs] or {}
    by_refill[rs] = by_period
    by_period[ps] = record
    cached = cached + 1
  end
  return record, err
end

-- LIMIT, MAXWAIT or TIMEOUT in any case, else nil.
local function keyword(s)
  if #s < 5 or #s > 7 then
    return nil
  end
  local word = string.upper(s)
  if word == 'LIMIT' or word == 'MAXWAIT' or word == 'TIMEOUT' then
    return word
  end
  return nil
end

-- `capacity refill period [cost] [LIMIT capacity refill period]...` and, for
-- RESERVE, `MAXWAIT ms` anywhere after the cost. Returns the limit records,
-- the cost and MAXWAIT; or nil and the first error, left to right.
local function parse(args, base, nargs, reserve)
  local record, err = cached_limit(args[base + 1], args[base + 2], args[base + 3])
  if not record then
    return nil, err
  end
  local L, cost, maxwait = { record }, 1, nil
  local i = 4
  if i <= nargs and not keyword(args[base + i]) then
    cost = integer(args[base + i])
    if not cost or cost < 0 then
      return nil, 'ERR cost must be a non-negative integer'
    end
    i = i + 1
  end
  while i <= nargs do
    local word = keyword(args[base + i])
    if word == 'LIMIT' then
      if i + 3 > nargs then
        return nil, 'ERR syntax error'
      end
      if #L == 16 then
        return nil, 'ERR too many limits: at most 16 bands'
      end
      record, err = cached_limit(args[base + i + 1], args[base + i + 2], args[base + i + 3])
      if not record then
        return nil, err
      end
      L[#L + 1] = record
      i = i + 4
    elseif word == 'MAXWAIT' and reserve and maxwait == nil and i < nargs then
      local text = args[base + i + 1]
      maxwait = integer(text)
      if not maxwait or maxwait < 0 then
        return nil, 'ERR maxwait must be a non-negative integer'
      end
      -- The module's bound, 2^62 ms.
      if #text > 19 or (#text == 19 and text > '4611686018427387904') then
        return nil, 'ERR maxwait is out of range'
      end
      i = i + 2
    else
      return nil, 'ERR syntax error'
    end
  end
  if reserve and maxwait == nil then
    return nil, 'ERR MAXWAIT is required'
  end
  return L, cost, maxwait
end

------------------------------------------------------------------ the bucket

-- An error reply redis.pcall gave, as the server words it: Redis 6.2
-- prefixes the errors its script layer raises itself (OOM, READONLY, ACL)
-- with the script's name and line, which are no business of the caller.
local function server_error(reply)
  local text = reply.err
  if type(text) ~= 'string' then
    return reply
  end
  local match = string.match
  text = match(text, '^@[%w_]+: ?%d+: ?(.*)$') or text
  return { err = match(text, '^%-(.*)$') or text }
end

local WRONGTYPE = 'WRONGTYPE Operation against a key holding the wrong kind of value'
local SPAN_ERROR =
  'ERR reservation is out of range for the script: a band would be more than 2^52 units (1/period_ms of a token) below full'

-- floor(a * b / m) for 0 <= a < m and 1 <= b, both at most 2^52, exactly:
-- a * b can exceed 2^53, so beyond 2^52 it is long multiplication modulo m,
-- one bit of b at a time, every intermediate value below m.
local function mul_div(a, b, m)
  if a == 0 then
    return 0
  end
  local x = a * b
  if x <= 4503599627370496 then
    return math.floor(x / m)
  end
  local q, r, bit = 0, 0, 4503599627370496
  while bit > b do
    bit = bit / 2
  end
  while bit >= 1 do
    q = q * 2
    if r >= m - r then
      r, q = r - (m - r), q + 1
    else
      r = r + r
    end
    if b >= bit then
      b = b - bit
      if r >= m - a then
        r, q = r - (m - a), q + 1
      else
        r = r + a
      end
    end
    bit = bit / 2
  end
  return q
end

-- Level u of a band of period p0 carried over to the limit record R: its
-- whole tokens, clamped to the capacity, and its fraction of a token as far
-- as the new period expresses it, rounded down. nil beyond the range.
local function carried(u, p0, R)
  local tokens = math.floor(u / p0)
  if tokens >= R[4] then
    return R[7]
  end
  local base = tokens * R[6]
  if base < -4503599627370496 then
    return nil
  end
  local level = base + mul_div(u - tokens * p0, R[6], p0)
  if R[7] - level > 4503599627370496 then
    return nil
  end
  return level
end

-- Reads the bucket under key as it stands now. With the call's limit records
-- L: answers each band's level now under the call's limits (U; the stored
-- band's, refilled under its own parameters and carried over; full when
-- there is none) and whether its parameters must be written (F). Without:
-- L, U and F of the stored bands. Every stored field is validated, the
-- bands the call drops included.
-- Returns L, U, F, now, t0, stored band count; false for no key; or nil and
-- an error reply.
local function load(key, L)
  local k = L and #L or 1
  local v
  if k == 1 then
    v = redis.pcall('HMGET', key, 't', 'n', 'c1', 'r1', 'p1', 'u1')
  else
    local fields = { 't', 'n' }
    for i = 1, k do
      fields[4 * i - 1], fields[4 * i], fields[4 * i + 1], fields[4 * i + 2] = 'c' .. i, 'r' .. i, 'p' .. i, 'u' .. i
    end
    v = redis.pcall('HMGET', key, unpack(fields))
  end
  if v.err then
    return nil, server_error(v)
  end
  if not v[1] then
    if redis.call('EXISTS', key) == 1 then
      return nil, { err = WRONGTYPE }
    end
    return false
  end
  local t0, n = integer(v[1]), v[2]
  if n == '1' then
    n = 1
  else
    n = n and integer(n)
  end
  if not t0 or t0 < 0 or t0 > 4503599627370496 or not n or n < 1 or n > 16 then
    return nil, { err = WRONGTYPE }
  end
  if n > k then
    local fields = {}
    for i = k + 1, n do
      fields[#fields + 1], fields[#fields + 2], fields[#fields + 3], fields[#fields + 4] = 'c' .. i, 'r' .. i, 'p' .. i, 'u' .. i
    end
    local more = redis.call('HMGET', key, unpack(fields))
    for j = 1, #more do
      v[4 * k + 2 + j] = more[j]
    end
  end
  local build = not L
  if build then
    L, k = {}, n
  end
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  local e = now - t0
  if e < 0 then
    e = 0
  end
  local U, F, out_of_range = { 0 }, { false }, false
  for i = 1, n do
    local j = 4 * i - 1
    local cs, rs, ps, us = v[j], v[j + 1], v[j + 2], v[j + 3]
    local R = L[i]
    local S = R
    if build or i > k or cs ~= R[1] or rs ~= R[2] or ps ~= R[3] then
      local c, r, p = cs and integer(cs), rs and integer(rs), ps and integer(ps)
      if not (c and r and p) or c < 1 or r < 1 or p < 1 or c * p > 4503599627370496 then
        return nil, { err = WRONGTYPE }
      end
      S = { cs, rs, ps, c, r, p, c * p }
    end
    local f = S[7]
    local u = us and integer(us)
    if not u or u > f or f - u > 4503599627370496 then
      return nil, { err = WRONGTYPE }
    end
    if i <= k then
      -- Refilled under the stored parameters, capped at full.
      if u < f then
        local add = S[5] * e
        if add >= f - u then
          u = f
        else
          u = u + add
        end
      end
      if build then
        L[i], U[i], F[i] = S, u, false
      elseif S == R then
        U[i], F[i] = u, false
      else
        if S[4] ~= R[4] or S[6] ~= R[6] then
          u = carried(u, S[6], R)
          out_of_range = out_of_range or u == nil
        end
        U[i], F[i] = u, true
      end
    end
  end
  if out_of_range then
    return nil, { err = SPAN_ERROR }
  end
  for i = n + 1, k do
    U[i], F[i] = L[i][7], true
  end
  return L, U, F, now, t0, n
end

------------------------------------------------------------------ decisions

-- The reply of one band (limit record R at level u): limited, limit,
-- remaining (whole tokens, never below 0), retry, reset (until full).
local function verdict(limited, R, u, retry)
  local remaining = math.floor(u / R[6])
  if remaining < 0 then
    remaining = 0
  end
  local reset = 0
  if u < R[7] then
    reset = math.ceil((R[7] - u) / R[5])
  end
  return { limited, R[4], remaining, retry, reset }
end

-- The first band whose capacity is below cost, or nil.
local function too_small(L, cost)
  for i = 1, #L do
    if cost > L[i][4] then
      return i
    end
  end
  return nil
end

-- The band with the fewest whole tokens (ties: the first).
local function fewest(L, U)
  local floor = math.floor
  local best, tokens = 1, floor(U[1] / L[1][6])
  for i = 2, #L do
    local t = floor(U[i] / L[i][6])
    if t < tokens then
      best, tokens = i, t
    end
  end
  return best
end

-- The band with the longest wait for cost (ties: the first), and the wait.
local function longest(L, U, cost)
  local ceil = math.ceil
  local best, wait = 1, 0
  for i = 1, #L do
    local R = L[i]
    local need = cost * R[6] - U[i]
    if need > 0 then
      local w = ceil(need / R[5])
      if w > wait then
        best, wait = i, w
      end
    end
  end
  return best, wait
end

-- RATE's decision on levels U: takes cost from every band when each holds
-- it. Answers the reply and whether anything was taken.
local function decide(L, U, cost)
  if #L == 1 then
    -- One band, the common case: the same rules, written out.
    local R, u = L[1], U[1]
    if cost > R[4] then
      return verdict(1, R, u, -1), false
    end
    local need = cost * R[6] - u
    if need > 0 then
      return verdict(1, R, u, math.ceil(need / R[5])), false
    end
    if cost > 0 then
      u = u - cost * R[6]
      U[1] = u
    end
    return verdict(0, R, u, -1), cost > 0
  end
  local small = too_small(L, cost)
  if small then
    return verdict(1, L[small], U[small], -1), false
  end
  for i = 1, #L do
    if U[i] < cost * L[i][6] then
      local b, wait = longest(L, U, cost)
      return verdict(1, L[b], U[b], wait), false
    end
  end
  if cost > 0 then
    for i = 1, #L do
      U[i] = U[i] - cost * L[i][6]
    end
  end
  local b = fewest(L, U)
  return verdict(0, L[b], U[b], -1), cost > 0
end

-- Writes bands L at levels U as of upd over a bucket of n stored bands (F:
-- whose parameters to write), and sets the key to expire when every band is
-- full. nil, or the server's error (then nothing was written).
local function store(key, L, U, F, n, upd)
  local ceil = math.ceil
  local k, reset = #L, 0
  for i = 1, k do
    local R = L[i]
    if U[i] < R[7] then
      local r = ceil((R[7] - U[i]) / R[5])
      if r > reset then
        reset = r
      end
    end
  end
  local ok
  if k == 1 and n == 1 and not F[1] then
    ok = redis.pcall('HSET', key, 't', upd, 'u1', U[1])
  else
    local a = { 't', upd }
    if n ~= k then
      a[3], a[4] = 'n', k
    end
    for i = 1, k do
      if F[i] then
        local R = L[i]
        a[#a + 1], a[#a + 2] = 'c' .. i, R[1]
        a[#a + 1], a[#a + 2] = 'r' .. i, R[2]
        a[#a + 1], a[#a + 2] = 'p' .. i, R[3]
      end
      a[#a + 1], a[#a + 2] = 'u' .. i, U[i]
    end
    -- The first write: where the server refuses writes (OOM, a read-only
    -- replica), its error is the reply, and nothing was written.
    ok = redis.pcall('HSET', key, unpack(a))
  end
  if type(ok) == 'table' and ok.err then
    return server_error(ok)
  end
  if n > k then
    local gone = {}
    for i = k + 1, n do
      gone[#gone + 1], gone[#gone + 2], gone[#gone + 3], gone[#gone + 4] = 'c' .. i, 'r' .. i, 'p' .. i, 'u' .. i
    end
    redis.call('HDEL', key, unpack(gone))
  end
  redis.call('PEXPIREAT', key, upd + reset)
  return nil
end

------------------------------------------------------------------- commands

-- Checks a call's keys and arguments; selects effects replication (before
-- any write). Returns the key, or nil and the arity error.
local function start(name, keys, args, base, least, most, writes)
  local nargs = #args - base
  if #keys ~= 1 or nargs < least or nargs > most then
    return nil, { err = "ERR wrong number of arguments for '" .. name .. "' command" }
  end
  if writes and redis.replicate_commands then
    redis.replicate_commands()
  end
  return keys[1], nargs
end

-- The bands a RATE or RESERVE call sees now: the stored ones under the
-- call's limits, or all full. Returns L, U, F, now, t0, n; or nil and the
-- reply. With invalid arguments, that reply is WRONGTYPE when the key holds
-- no bucket (the key's type comes first), else the argument's error.
local function prepare(key, L, err)
  if not L then
    local found, type_err = load(key, nil)
    if found == nil then
      return nil, type_err
    end
    return nil, { err = err }
  end
  local found, U, F, now, t0, n = load(key, L)
  if found == nil then
    return nil, U
  end
  if found == false then
    U, F = {}, {}
    for i = 1, #L do
      U[i], F[i] = L[i][7], true
    end
    local clock = redis.call('TIME')
    now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
    return L, U, F, now, nil, 0
  end
  -- The stored time never moves back: time a clock step back repeats is
  -- not refilled twice.
  if t0 > now then
    now = t0
  end
  return L, U, F, now, t0, n
end

-- RATE with one limit on a bucket of one band under that same limit (or on
-- no key): the call nearly every request makes, written out in one
-- function, with no table but the reply. The same rules as the general path
-- (load, decide, store), which answers every other call: nil when this one
-- does not apply (then nothing was written).
local function rate_one(key, args, base, nargs)
  local cost = 1
  if nargs == 4 then
    cost = integer(args[base + 4])
    if not cost or cost < 0 then
      return nil
    end
  end
  local R = cached_limit(args[base + 1], args[base + 2], args[base + 3])
  if not R then
    return nil
  end
  local v = redis.pcall('HMGET', key, 't', 'n', 'c1', 'r1', 'p1', 'u1')
  if v.err then
    return server_error(v)
  end
  local find, tonumber, floor, ceil = string.find, tonumber, math.floor, math.ceil
  local ts, us = v[1], v[6]
  local c, r, p, f = R[4], R[5], R[6], R[7]
  local u, t0
  if not ts then
    if redis.call('EXISTS', key) == 1 then
      return { err = WRONGTYPE }
    end
    u = f
  elseif v[2] == '1' and v[3] == R[1] and v[4] == R[2] and v[5] == R[3] then
    if not (find(ts, '^[1-9]%d*$') or ts == '0') or not us or not (find(us, '^%-?[1-9]%d*$') or us == '0') then
      return { err = WRONGTYPE }
    end
    t0, u = tonumber(ts), tonumber(us)
    if t0 > 4503599627370496 or u > f or f - u > 4503599627370496 then
      return { err = WRONGTYPE }
    end
  else
    return nil
  end
  local clock = redis.call('TIME')
  local now = tonumber(clock[1]) * 1000 + floor(tonumber(clock[2]) / 1000)
  if t0 then
    if t0 >= now then
      now = t0
    elseif u < f then
      -- Refilled for the time since t0, capped at full.
      local add = r * (now - t0)
      if add >= f - u then
        u = f
      else
        u = u + add
      end
    end
  end
  local limited, retry = 0, -1
  if cost > c then
    limited = 1
  else
    local need = cost * p - u
    if need > 0 then
      limited, retry = 1, ceil(need / r)
    elseif cost > 0 then
      u = u - cost * p
    end
  end
  local remaining, reset = floor(u / p), 0
  if remaining < 0 then
    remaining = 0
  end
  if u < f then
    reset = ceil((f - u) / r)
  end
  if limited == 0 and cost > 0 then
    local ok
    if t0 then
      ok = redis.pcall('HSET', key, 't', now, 'u1', u)
    else
      ok = redis.pcall('HSET', key, 't', now, 'n', 1, 'c1', R[1], 'r1', R[2], 'p1', R[3], 'u1', u)
    end
    if type(ok) == 'table' and ok.err then
      return server_error(ok)
    end
    redis.call('PEXPIREAT', key, now + reset)
  end
  return { limited, c, remaining, retry, reset }
end

local function rate(keys, args, base)
  local key, nargs = start('charon_rate', keys, args, base, 3, 1e9, true)
  if not key then
    return nargs
  end
  if nargs <= 4 then
    local reply = rate_one(key, args, base, nargs)
    if reply then
      return reply
    end
  end
  local L, cost = parse(args, base, nargs, false)
  local U, F, now, t0, n
  L, U, F, now, t0, n = prepare(key, L, cost)
  if not L then
    return U
  end
  local reply, took = decide(L, U, cost)
  if took then
    local err = store(key, L, U, F, n, now)
    if err then
      return err
    end
  end
  return reply
end

local function reserve(keys, args, base)
  local key, nargs = start('charon_reserve', keys, args, base, 3, 1e9, true)
  if not key then
    return nargs
  end
  local L, cost, maxwait = parse(args, base, nargs, true)
  local U, F, now, t0, n
  L, U, F, now, t0, n = prepare(key, L, cost)
  if not L then
    return U
  end
  local small = too_small(L, cost)
  if small then
    return verdict(1, L[small], U[small], -1)
  end
  local b, wait = longest(L, U, cost)
  if wait > maxwait then
    return verdict(1, L[b], U[b], wait - maxwait)
  end
  if cost > 0 then
    for i = 1, #L do
      local R = L[i]
      if R[7] - (U[i] - cost * R[6]) > 4503599627370496 then
        return { err = SPAN_ERROR }
      end
    end
    for i = 1, #L do
      U[i] = U[i] - cost * L[i][6]
    end
    local err = store(key, L, U, F, n, now)
    if err then
      return err
    end
  end
  if wait == 0 then
    b = fewest(L, U)
    return verdict(0, L[b], U[b], -1)
  end
  return verdict(0, L[b], U[b], wait)
end

local function peek(keys, args, base)
  local key, nargs = start('charon_peek', keys, args, base, 0, 1, false)
  if not key then
    return nargs
  end
  local L, U = load(key, nil)
  if L == nil then
    return U
  end
  local cost = 1
  if nargs == 1 then
    cost = integer(args[base + 1])
    if not cost or cost < 0 then
      return { err = 'ERR cost must be a non-negative integer' }
    end
  end
  if not L then
    return false
  end
  return (decide(L, U, cost))
end

local function refund(keys, args, base)
  local key, nargs = start('charon_refund', keys, args, base, 1, 1, true)
  if not key then
    return nargs
  end
  local L, U, F, now, t0, n = load(key, nil)
  if L == nil then
    return U
  end
  local tokens = integer(args[base + 1])
  if not tokens or tokens < 1 then
    return { err = 'ERR tokens must be a positive integer' }
  end
  if not L then
    return false
  end
  local floor = math.floor
  local full, fewest_tokens = true, nil
  for i = 1, n do
    local R = L[i]
    if tokens * R[6] >= R[7] - U[i] then
      U[i] = R[7]
    else
      U[i] = U[i] + tokens * R[6]
      full = false
    end
    local whole = floor(U[i] / R[6])
    if not fewest_tokens or whole < fewest_tokens then
      fewest_tokens = whole
    end
  end
  if full then
    redis.call('DEL', key)
  else
    if t0 > now then
      now = t0
    end
    local err = store(key, L, U, F, n, now)
    if err then
      return err
    end
  end
  if fewest_tokens < 0 then
    return 0
  end
  return fewest_tokens
end

------------------------------------------------------------------ the entry

if redis.register_function then
  -- The Functions form: the file ran once, so parsed limits can be kept.
  cache = {}
  redis.register_function('charon_rate', function(keys, args)
    return rate(keys, args, 0)
  end)
  redis.register_function({
    function_name = 'charon_peek',
    callback = function(keys, args)
      return peek(keys, args, 0)
    end,
    flags = { 'no-writes' },
  })
  redis.register_function('charon_refund', function(keys, args)
    return refund(keys, args, 0)
  end)
  redis.register_function('charon_reserve', function(keys, args)
    return reserve(keys, args, 0)
  end)
else
  -- The EVAL form: ARGV[1] names the function, its arguments follow.
  local name = ARGV[1]
  if name == 'charon_rate' then
    return rate(KEYS, ARGV, 1)
  elseif name == 'charon_peek' then
    return peek(KEYS, ARGV, 1)
  elseif name == 'charon_refund' then
    return refund(KEYS, ARGV, 1)
  elseif name == 'charon_reserve' then
    return reserve(KEYS, ARGV, 1)
  end
  return {
    err = 'ERR unknown function: the first argument must be charon_rate, charon_peek, charon_refund or charon_reserve',
  }
end
