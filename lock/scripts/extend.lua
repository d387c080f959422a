-- Extend a held lock's lease, owner-checked.
-- KEYS[1] owner hash; ARGV[1] owner token, ARGV[2] new ttl in ms
-- Returns 1 when extended, 0 when not held by this token (or already
-- released and only kept for hold_at_least, which must not be stretched).
local h = redis.call('HMGET', KEYS[1], 'owner', 'count')
if h[1] ~= ARGV[1] or h[2] == '0' then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
