-- Extend a held lock's lease, owner-checked.
-- KEYS[1] owner hash; ARGV[1] owner token, ARGV[2] new ttl in ms,
-- ARGV[3] (optional) "renew": a background renewal, which never shortens the
-- lease — the owner may have set a longer one (Extend) after this renewal
-- was sent; without it the owner's Extend sets the lease exactly, shorter
-- or longer.
-- Returns 1 when the lease is now at least ARGV[2] (extended, or already
-- longer for a renewal), 0 when not held by this token (or already released
-- and only kept for hold_at_least, which must not be stretched).
local h = redis.call('HMGET', KEYS[1], 'owner', 'count')
if h[1] ~= ARGV[1] or h[2] == '0' then
  return 0
end
local ttl = tonumber(ARGV[2])
if ARGV[3] == 'renew' and redis.call('PTTL', KEYS[1]) >= ttl then
  return 1
end
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
