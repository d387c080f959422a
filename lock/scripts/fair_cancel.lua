-- Leave a fair lock's queue (a waiter that gives up), or undo an acquire
-- whose reply never arrived (see cancel.lua for that race).
-- KEYS[1] owner hash, KEYS[2] queue ZSET, KEYS[3] timeouts ZSET,
-- KEYS[4] cancel marker {P K}:cancel:<token>
-- ARGV[1] token, ARGV[2] marker lifetime in ms, ARGV[3] release channel
-- Returns 1 when the lock itself was given back, 0 when the token only left
-- the queue (or was not in it) and the marker was set. When the lock is
-- free and the head changed, the new head is told as on a release.
-- #include _fair_tell.lua
local function publish_head()
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
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  tell_head(ARGV[3], head)
end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  publish_head()
  return 1
end
local first = redis.call('ZRANGE', KEYS[2], 0, 0)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[2])
if first[1] == ARGV[1] and redis.call('EXISTS', KEYS[1]) == 0 then
  publish_head()
end
return 0
