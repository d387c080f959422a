-- Extend a held lock's lease, owner-checked.
-- KEYS[1] owner hash; ARGV[1] owner token, ARGV[2] new ttl in ms
-- Returns 1 when extended, 0 when not held by this token.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
