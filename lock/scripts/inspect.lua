-- Read a lock's state in one consistent snapshot.
-- KEYS[1] owner hash, KEYS[2] fence counter
-- Returns {owner or "", pttl (-2 when free), hold count, fence of this hold,
-- last fence issued for the key}.
local h = redis.call('HMGET', KEYS[1], 'owner', 'count', 'fence')
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if not h[1] then
  return {'', -2, 0, 0, last}
end
return {h[1], redis.call('PTTL', KEYS[1]), tonumber(h[2]), tonumber(h[3]), last}
