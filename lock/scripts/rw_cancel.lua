-- Undo a read or write acquire whose reply never arrived, or withdraw a
-- waiting writer's claim when it stops waiting (see cancel.lua for the
-- race this settles). Tokens are unique per acquisition, so one script
-- serves both sides.
-- KEYS[1] writer hash, KEYS[2] readers ZSET, KEYS[3] waiting writers ZSET,
-- KEYS[4] cancel marker {P K}:cancel:<token>
-- ARGV[1] token, ARGV[2] marker lifetime in ms, ARGV[3] release channel
-- Returns 1 when a hold (read or write) was given back, 0 when the marker
-- was set instead (a claim, if any, is withdrawn either way).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local now_text = string.format('%.0f', now)
local claimed = redis.call('ZREM', KEYS[3], ARGV[1])
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[3], KEYS[1])
  return 1
end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now_text)
  if redis.call('ZCARD', KEYS[2]) == 0 then
    redis.call('PUBLISH', ARGV[3], KEYS[2])
  end
  return 1
end
redis.call('SET', KEYS[4], '1', 'PX', ARGV[2])
-- The last claim gone lets the readers it held back in.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now_text)
if claimed == 1 and redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('PUBLISH', ARGV[3], KEYS[3])
end
return 0
