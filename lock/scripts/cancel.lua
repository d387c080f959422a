-- Undo an acquire whose reply never arrived (timeout, broken connection).
-- The acquire may have run already, or may still be queued on the server
-- behind this call on another connection; both orders end unlocked:
-- if it ran, the lock is deleted here; if not, the marker makes it refuse.
-- KEYS[1] owner hash, KEYS[2] cancel marker {P K}:cancel:<token>
-- ARGV[1] owner token, ARGV[2] marker lifetime in ms, ARGV[3] release channel
-- Returns 1 when a lock was deleted, 0 when the marker was set instead.
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[3], KEYS[1])
  return 1
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 0
