-- Release one level of a held fair lock, owner-checked, and tell the next
-- in line. It grants nothing itself: the head takes the lock with its own
-- fair_acquire.lua call, so a lease never starts for a waiter that has not
-- asked yet (one that died would otherwise hold the lock for a whole ttl).
-- KEYS[1] owner hash, KEYS[2] queue ZSET, KEYS[3] timeouts ZSET
-- ARGV[1] owner token, ARGV[2] hold count after this call, ARGV[3] release
-- channel
-- Returns 1 when released (or the count lowered), 0 when not held by this
-- token. The message published on the last release is the token of the
-- first live waiter ("" when none), so a process can wake exactly that one.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], 'count', ARGV[2])
  return 1
end
redis.call('DEL', KEYS[1])
local t = redis.call('TIME')
local now = string.format('%.0f', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #gone > 0 then
  -- In slices: unpack() of a long list would overflow Lua's C stack.
  for i = 1, #gone, 1000 do
    redis.call('ZREM', KEYS[2], unpack(gone, i, math.min(i + 999, #gone)))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)
redis.call('PUBLISH', ARGV[3], head[1] or '')
return 1
