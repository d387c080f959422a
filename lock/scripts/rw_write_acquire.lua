-- Take the write side of a read-write lock, or re-enter it.
-- KEYS[1] writer hash {P K}:rw:writer: fields owner, count, fence (the
-- mutex's layout, so extend.lua and release.lua serve the write side)
-- KEYS[2] readers ZSET {P K}:rw:readers (token -> end of lease, ms)
-- KEYS[3] waiting writers ZSET {P K}:rw:writers_waiting (token -> end of
-- claim, ms)
-- KEYS[4] fence record {P K}:fence, KEYS[5] cancel marker {P K}:cancel:<token>
-- ARGV[1] writer token, ARGV[2] ttl in ms, ARGV[3] hold count after this
-- call, ARGV[4] "1" to issue a fencing token, ARGV[5] fence record
-- retention in ms, ARGV[6] claim in ms: how long a writer that could not
-- get in keeps new readers out without trying again (it renews the claim by
-- retrying, or with lease_extend.lua on KEYS[3])
--
-- Writer preference: a writer that finds readers (or another writer) in
-- leaves a claim, and rw_read_acquire.lua admits no new reader while a live
-- claim exists. A claim ends by itself, so a writer that died or gave up
-- without rw_cancel.lua holds readers back for one claim at most.
-- Fencing token as acquire.lua: max(last + 1, server clock in us) (see
-- there for the clock assumption and the number formatting).
-- Returns {1, fence, lease left in ms} when held; {0, ms to wait, why}
-- when not: why 1 = a writer holds (ms = its lease left), 3 = readers hold
-- (ms = until the last read lease ends unless renewed); {-1, 0, 0} when
-- this token's acquire was cancelled, {-2, 0, 0} when re-entering a hold
-- already gone. Every argument is checked before the first write.
-- #include _checks.lua
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
local fencing = flag(ARGV[4], 'fencing (ARGV[4])')
local retention = positive_integer(ARGV[5], 'fence retention (ARGV[5], ms)')
local claim = positive_integer(ARGV[6], 'claim (ARGV[6], ms)')
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
  -- Re-entry or a retried acquire: set, not increment (idempotent).
  redis.call('HSET', KEYS[1], 'count', ARGV[3])
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < ttl then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    pttl = ttl
  end
  return {1, tonumber(redis.call('HGET', KEYS[1], 'fence')), pttl}
end
if count > 1 then
  return {-2, 0, 0}
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  return {-1, 0, 0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms(now))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ms(now))
local last_reader = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
if owner or last_reader[1] then
  redis.call('ZADD', KEYS[3], ms(now + claim), ARGV[1])
  local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[3], ms(tonumber(last[2]) - now))
  if owner then
    return {0, redis.call('PTTL', KEYS[1]), 1}
  end
  return {0, tonumber(last_reader[2]) - now, 3}
end
-- The claim has done its work; other writers' claims keep readers out.
redis.call('ZREM', KEYS[3], ARGV[1])
local fence = 0
local fence_text = '0'
if fencing then
  fence, fence_text = next_fence(KEYS[4], t, math.max(retention, ttl))
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'count', 1, 'fence', fence_text)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, fence, ttl}
