-- Give back a read hold, owner-checked. (The write side is released with
-- release.lua on {P K}:rw:writer and the channel {P K}:rw:released.)
-- KEYS[1] readers ZSET {P K}:rw:readers (token -> end of lease, ms)
-- ARGV[1] reader token, ARGV[2] release channel
-- Returns 1 when this token's live read hold was given back, 0 when it had
-- none (never, released already, or its lease ended).
-- Only the last reader out publishes: before that nobody waiting can
-- proceed (writers wait for all readers; new readers wait only while a
-- writer holds or claims).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ends) <= now then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now))
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('PUBLISH', ARGV[2], KEYS[1])
end
return 1
