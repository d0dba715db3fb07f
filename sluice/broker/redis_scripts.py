"""The Lua scripts of the Redis broker. Each one is a step that must not interleave with another writer's.

Redis runs a script atomically, so numbering an event, refusing a second terminal event and waking subscribers is
one step however many instances append to the same channel.
"""

from __future__ import annotations

# KEYS: log, meta. ARGV: next_seq, ttl. Returns 1 if the log was created.
# A log with no events yet may have its floor raised (a recovered run numbers from past the old run's reservation).
OPEN_LOG = """
local nxt = redis.call('HGET', KEYS[2], 'next')
if not nxt then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'next', ARGV[1], 'first', ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 0 and tonumber(nxt) < tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[2], 'next', ARGV[1], 'first', ARGV[1])
end
return 0
"""

# KEYS: log, meta. ARGV: type, the event's JSON after `{"seq":0,`, terminal (1/0), ttl while open, ttl once done,
# notify channel. Returns the seq, 0 if the log already holds a terminal event (or, for any other event, is sealed),
# -1 if there is no log (lost).
# The notification carries the event (`<type> <json>`), so a subscriber that is caught up needs no XRANGE.
APPEND = """
local meta = redis.call('HMGET', KEYS[2], 'next', 'done', 'first', 'sealed')
if not meta[1] then return -1 end
if meta[2] then return 0 end
if meta[4] and ARGV[3] ~= '1' then return 0 end
local seq = tonumber(meta[1])
local data = '{"seq":' .. seq .. ',' .. ARGV[2]
redis.call('XADD', KEYS[1], seq .. '-0', 't', ARGV[1], 'd', data)
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], 'next', seq + 1, 'done', '1')
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
else
  redis.call('HSET', KEYS[2], 'next', seq + 1)
  -- the meta got its TTL when the log was opened; the stream gets the same one with its first event
  if seq == tonumber(meta[3]) then redis.call('EXPIRE', KEYS[1], ARGV[4]) end
end
redis.call('PUBLISH', ARGV[6], ARGV[1] .. ' ' .. data)
return seq
"""

# KEYS: meta. Marks the log sealed (only a terminal event may follow) and returns its last seq; -1 if there is no log.
SEAL = """
local nxt = redis.call('HGET', KEYS[1], 'next')
if not nxt then return -1 end
redis.call('HSET', KEYS[1], 'sealed', '1')
return tonumber(nxt) - 1
"""

# KEYS: jobs stream, the request's marker. ARGV: request id. Returns the entry id, or nil if already held.
ENQUEUE = """
if redis.call('SET', KEYS[2], '-', 'NX') then
  local id = redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
  redis.call('SET', KEYS[2], id)
  return id
end
return false
"""

# KEYS: jobs stream, the request's marker. ARGV: group, entry id.
# The marker goes only if it still names this entry: it may already belong to a newer enqueue of the request.
ACK = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
"""

# KEYS: jobs stream. ARGV: group, consumer, entry ids. Resets the idle time of the entries this consumer still owns
# (so nobody claims a job that is still running) and returns the ids it no longer owns.
REFRESH = """
local lost = {}
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if p[1] and p[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    table.insert(lost, ARGV[i])
  end
end
return lost
"""

# KEYS: the rate key's base. ARGV: window seconds. Fixed windows on Redis's clock (the same for every instance).
# Returns {hits in the current window, seconds until it ends (as a string: Lua numbers come back truncated)}.
HIT_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local window = tonumber(ARGV[1])
local index = math.floor(now / window)
local key = KEYS[1] .. ':' .. index
local hits = redis.call('INCR', key)
if hits == 1 then redis.call('PEXPIRE', key, math.ceil(window * 1000) + 1000) end
return {hits, tostring((index + 1) * window - now)}
"""

# KEYS: the slots key. ARGV: limit, ttl seconds, token. Returns 1 if the slot was taken, nil if all are held.
# Slots of a dead instance are never released: they drop out when their ttl passes.
ACQUIRE_SLOT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tostring(now))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return false end
redis.call('ZADD', KEYS[1], tostring(now + tonumber(ARGV[2])), ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2]) * 1000))
return 1
"""

# Budgets and per-minute limits (`sluice.spend.limits`), checked and taken in one step for every scope of a request
# (its key's and its project's), so instances admitting requests together never overrun a budget.
# KEYS: per scope, 4: budget hash, holds zset, rpm base, tpm base. ARGV: scopes, hold id, hold nano, hold tokens,
# hold ttl, then per scope 3: budget nano, rpm, tpm (-1: none).
# Returns {'ok', minute} or {limit, scope index, retry after, spent, held} (limit: budget | rpm | tpm | unseeded).
RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local minute = math.floor(now / 60)
local retry = tostring((minute + 1) * 60 - now)
local n, id = tonumber(ARGV[1]), ARGV[2]
local nano, tokens, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
for i = 0, n - 1 do
  local state, holds = KEYS[i * 4 + 1], KEYS[i * 4 + 2]
  local budget, rpm, tpm = tonumber(ARGV[6 + i * 3]), tonumber(ARGV[7 + i * 3]), tonumber(ARGV[8 + i * 3])
  if budget >= 0 then
    if redis.call('EXISTS', state) == 0 then return {'unseeded', i, '0', '0', '0'} end
    for _, gone in ipairs(redis.call('ZRANGEBYSCORE', holds, '-inf', tostring(now))) do
      local amount = redis.call('HGET', state, 'h:' .. gone)
      if amount then
        redis.call('HINCRBY', state, 'held', -tonumber(amount))
        redis.call('HDEL', state, 'h:' .. gone)
      end
      redis.call('ZREM', holds, gone)
    end
    local spent = tonumber(redis.call('HGET', state, 'spent') or '0')
    local held = tonumber(redis.call('HGET', state, 'held') or '0')
    if spent + held + nano > budget then return {'budget', i, '0', tostring(spent), tostring(held)} end
  end
  if rpm >= 0 and tonumber(redis.call('GET', KEYS[i * 4 + 3] .. ':' .. minute) or '0') + 1 > rpm then
    return {'rpm', i, retry, '0', '0'}
  end
  if tpm >= 0 and tonumber(redis.call('GET', KEYS[i * 4 + 4] .. ':' .. minute) or '0') + tokens > tpm then
    return {'tpm', i, retry, '0', '0'}
  end
end
for i = 0, n - 1 do
  local budget, rpm, tpm = tonumber(ARGV[6 + i * 3]), tonumber(ARGV[7 + i * 3]), tonumber(ARGV[8 + i * 3])
  if budget >= 0 then
    redis.call('HINCRBY', KEYS[i * 4 + 1], 'held', nano)
    redis.call('HSET', KEYS[i * 4 + 1], 'h:' .. id, nano)
    redis.call('ZADD', KEYS[i * 4 + 2], tostring(now + ttl), id)
  end
  if rpm >= 0 then
    local key = KEYS[i * 4 + 3] .. ':' .. minute
    redis.call('INCR', key)
    redis.call('EXPIRE', key, 120)
  end
  if tpm >= 0 then
    local key = KEYS[i * 4 + 4] .. ':' .. minute
    redis.call('INCRBY', key, tokens)
    redis.call('EXPIRE', key, 120)
  end
end
return {'ok', tostring(minute)}
"""

# KEYS: per scope, 3: budget hash, holds zset, tpm base. ARGV: scopes, hold id, actual nano, actual tokens minus
# held tokens, minute, release (1/0), then per scope 2: has a budget (1/0), has a tpm (1/0).
# Adds what the run really cost and, with release, gives back the hold (if it is still there: it may have expired).
# A budget whose state is gone (Redis lost it) is left to be seeded again from the store, which has the cost.
SETTLE = """
local n, id, nano, tokens, minute = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
for i = 0, n - 1 do
  local state = KEYS[i * 3 + 1]
  if ARGV[7 + i * 2] == '1' and redis.call('EXISTS', state) == 1 then
    local amount = redis.call('HGET', state, 'h:' .. id)
    if amount and ARGV[6] == '1' then
      redis.call('HINCRBY', state, 'held', -tonumber(amount))
      redis.call('HDEL', state, 'h:' .. id)
      redis.call('ZREM', KEYS[i * 3 + 2], id)
    end
    if nano > 0 then redis.call('HINCRBY', state, 'spent', nano) end
  end
  local window = KEYS[i * 3 + 3] .. ':' .. minute
  if ARGV[8 + i * 2] == '1' and tokens ~= 0 and redis.call('EXISTS', window) == 1 then
    redis.call('INCRBY', window, tokens)
  end
end
return 1
"""

# KEYS: budget hash. ARGV: spent (nano, from the store), ttl seconds (0: none). Sets it only if it is not there.
SEED = """
if redis.call('HSETNX', KEYS[1], 'spent', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'held', 0)
  if tonumber(ARGV[2]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
end
return 1
"""
