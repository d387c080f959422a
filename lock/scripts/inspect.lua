-- Read a lock's state in one consistent snapshot.
-- KEYS[1] owner hash, KEYS[2] fence record (last token issued; it expires
-- fencing_retention after the last fresh acquisition)
-- Returns {owner or "", pttl (-2 when free), hold count, fence of this hold,
-- last fence issued for the key}. The last fence falls back to the hold's
-- own token (the record may have expired under a long renewed hold), and is
-- 0 when neither exists: no token issued within the retention window.
local h = redis.call('HMGET', KEYS[1], 'owner', 'count', 'fence')
local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
if not h[1] then
  return {'', -2, 0, 0, last}
end
local fence = tonumber(h[3]) or 0
return {h[1], redis.call('PTTL', KEYS[1]), tonumber(h[2]), fence,
        math.max(last, fence)}
