-- Release one re-entry level of a lock knowing only its owner token
-- (UnlockByValue, like its Go namesake). release.lua sets the count that the
-- holding instance computed; a caller from another process does not know the
-- depth, so this one decrements.
-- KEYS[1] owner hash
-- ARGV[1] owner token, ARGV[2] release channel
-- Returns 2 when a level was released and others remain (the lease is not
-- refreshed), 1 when the last one was (key deleted, waiters notified), 0 when
-- the token does not hold the lock. A key kept only for hold_at_least (count
-- 0) is no longer held: it stays, so the run-once guarantee does too.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
local count = tonumber(redis.call('HGET', KEYS[1], 'count')) or 0
if count <= 0 then
  return 0
end
if count > 1 then
  redis.call('HSET', KEYS[1], 'count', count - 1)
  return 2
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], KEYS[1])
return 1
