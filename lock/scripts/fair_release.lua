-- Release one level of a held fair lock, owner-checked, and tell the next
-- in line; optionally hand the lock straight to it.
-- KEYS[1] owner hash, KEYS[2] queue ZSET, KEYS[3] timeouts ZSET,
-- KEYS[4] fence record {P K}:fence (used by a handoff only)
-- ARGV[1] owner token, ARGV[2] hold count after this call, ARGV[3] release
-- channel; for a handoff also ARGV[4] "handoff", ARGV[5] "1" to issue a
-- fencing token, ARGV[6] fence record retention in ms
--
-- By default it grants nothing: the head takes the lock with its own
-- fair_acquire.lua call, so no lease starts for a waiter that has not asked
-- (one that died would otherwise keep the lock). The message is the head's
-- token, published to the head's process alone ("" on the channel itself
-- when nobody waits; _fair_tell.lua), so exactly that waiter wakes: a
-- handoff costs the release and the head's one call, whatever the length
-- of the queue or the number of processes waiting.
-- "handoff" closes the gap of that call: the head becomes the owner here,
-- with a fresh fencing token, for exactly as long as its place in the
-- queue had left (so a dead head keeps the lock no longer than it would
-- have kept its place), and the message is "<token> <fence>". The head may
-- start at once, counting its validity from before its last call plus its
-- queue lease, and extends the hold to its ttl (extend.lua, or fair_acquire
-- .lua, which re-enters).
-- Returns 1 when released (or the count lowered), 2 when released and
-- handed to the next waiter, 0 when not held by this token.
-- #include _checks.lua
-- #include _fair_tell.lua
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], 'count', ARGV[2])
  return 1
end
local handoff = ARGV[4] == 'handoff'
local fencing, retention
if handoff then
  fencing = flag(ARGV[5], 'fencing (ARGV[5])')
  retention = positive_integer(ARGV[6], 'fence retention (ARGV[6], ms)')
end
redis.call('DEL', KEYS[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_text = string.format('%.0f', now)
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now_text)
if #gone > 0 then
  -- In slices: unpack() of a long list would overflow Lua's C stack.
  for i = 1, #gone, 1000 do
    redis.call('ZREM', KEYS[2], unpack(gone, i, math.min(i + 999, #gone)))
  end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_text)
end
local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
if not handoff or not head then
  tell_head(ARGV[3], head)
  return 1
end
local place_ends = tonumber(redis.call('ZSCORE', KEYS[3], head))
redis.call('ZREM', KEYS[2], head)
redis.call('ZREM', KEYS[3], head)
local fence_text = '0'
if fencing then
  local _
  _, fence_text = next_fence(KEYS[4], t, math.max(retention, place_ends - now))
end
redis.call('HSET', KEYS[1], 'owner', head, 'count', 1, 'fence', fence_text)
redis.call('PEXPIRE', KEYS[1], string.format('%.0f', place_ends - now))
tell_head(ARGV[3], head, head .. ' ' .. fence_text)
return 2
