-- Undo a semaphore acquire whose reply never arrived (see cancel.lua: the
-- acquire may have run already, or may still be queued behind this call).
-- KEYS[1] holders ZSET, KEYS[2] cancel marker {P K}:cancel:<token>
-- ARGV[1] holder token, ARGV[2] marker lifetime in ms, ARGV[3] release channel
-- Returns 1 when a permit was given back, 0 when the marker was set instead.
if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
  redis.call('PUBLISH', ARGV[3], KEYS[1])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
