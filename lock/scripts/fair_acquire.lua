-- Join a fair lock's queue and take the lock if this token is first in it;
-- or re-enter the lock this token holds.
-- KEYS[1] owner hash {P K}:fair:owner: owner, count, fence (the mutex's
-- layout, so extend.lua extends the holder)
-- KEYS[2] queue ZSET {P K}:fair:queue: waiter token -> ticket (the order)
-- KEYS[3] timeouts ZSET {P K}:fair:timeouts: waiter token -> end of its
-- place in the queue (ms, server clock)
-- KEYS[4] fence record {P K}:fence, KEYS[5] cancel marker
-- {P K}:cancel:<token> (set by fair_cancel.lua)
-- ARGV[1] token, ARGV[2] ttl in ms, ARGV[3] hold count after this call,
-- ARGV[4] "1" to issue a fencing token, ARGV[5] fence record retention in
-- ms, ARGV[6] queue lease in ms: how long this waiter keeps its place
-- without calling again (this script or lease_extend.lua on KEYS[3], KEYS[2])
--
-- Order: a waiter keeps the ticket it got on its first call, however often
-- it calls again, and only the lowest ticket may take a free lock. A waiter
-- that stops calling (died, paused, gave up without fair_cancel.lua) is
-- dropped when its queue lease ends, so a dead head stalls the queue for at
-- most that long. The work per call is O(log n) plus the dropped waiters;
-- the calls per handoff do not depend on the queue length: the release
-- publishes the head's token, and the head's next call takes the lock.
-- Fencing token as acquire.lua: max(last + 1, server clock in us).
-- Returns {1, fence, lease left in ms} when held; {0, ms to wait, place}
-- when not (place 1 = next in line; ms = the holder's lease left, or when
-- the lock is free, until the head's place ends unless it calls again);
-- {-1, 0, 0} when this token's acquire was cancelled, {-2, 0, 0} when
-- re-entering a hold already gone. Every argument is checked before the
-- first write.
-- #include _checks.lua
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
local fencing = flag(ARGV[4], 'fencing (ARGV[4])')
local retention = positive_integer(ARGV[5], 'fence retention (ARGV[5], ms)')
local queue_lease = positive_integer(ARGV[6], 'queue lease (ARGV[6], ms)')
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
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
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ms(now))
if #gone > 0 then
  -- In slices: unpack() of a long list would overflow Lua's C stack.
  for i = 1, #gone, 1000 do
    redis.call('ZREM', KEYS[2], unpack(gone, i, math.min(i + 999, #gone)))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ms(now))
end
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  local tail = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  local ticket = tail[1] and tonumber(tail[2]) + 1 or 1
  redis.call('ZADD', KEYS[2], ms(ticket), ARGV[1])
end
redis.call('ZADD', KEYS[3], ms(now + queue_lease), ARGV[1])
local place = redis.call('ZRANK', KEYS[2], ARGV[1]) + 1
if not owner and place == 1 then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
end
-- The queue's keys expire with the last place in it.
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
if last[1] then
  redis.call('PEXPIRE', KEYS[2], ms(tonumber(last[2]) - now))
  redis.call('PEXPIRE', KEYS[3], ms(tonumber(last[2]) - now))
end
if owner then
  return {0, redis.call('PTTL', KEYS[1]), place}
end
if place > 1 then
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)
  return {0, tonumber(redis.call('ZSCORE', KEYS[3], head[1])) - now, place}
end
local fence = 0
local fence_text = '0'
if fencing then
  fence, fence_text = next_fence(KEYS[4], t, math.max(retention, ttl))
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'count', 1, 'fence', fence_text)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, fence, ttl}
