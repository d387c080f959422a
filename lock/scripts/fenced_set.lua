-- Write a value guarded by a fencing token: accepted only when the token is
-- at least the highest token that ever wrote this resource, so a holder that
-- was paused past its lease (and lost the lock) cannot overwrite the work of
-- the holder that came after it.
-- KEYS[1] resource hash: fields value, fence
-- ARGV[1] value, ARGV[2] fencing token
-- Returns {1, token} when written, {0, highest} when refused as stale.
local highest = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
local token = tonumber(ARGV[2])
if token < highest then
  return {0, highest}
end
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'fence', token)
return {1, token}
