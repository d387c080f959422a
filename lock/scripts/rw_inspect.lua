-- Read a read-write lock's state in one consistent snapshot, without writing.
-- KEYS[1] writer hash, KEYS[2] readers ZSET, KEYS[3] waiting writers ZSET,
-- KEYS[4] fence record
-- Returns {writer or "", writer lease left in ms (-2 when none), writer hold
-- count, fence of the write hold, last fence issued (as inspect.lua),
-- {reader token, ms left, ...}, {waiting writer token, ms its claim has
-- left, ...}}; leases and claims already over are left out.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function live(key)
  local rows = redis.call('ZRANGEBYSCORE', key, '(' .. string.format('%.0f', now),
                          '+inf', 'WITHSCORES')
  local out = {}
  for i = 1, #rows, 2 do
    out[#out + 1] = rows[i]
    out[#out + 1] = tonumber(rows[i + 1]) - now
  end
  return out
end
local h = redis.call('HMGET', KEYS[1], 'owner', 'count', 'fence')
local last = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if not h[1] then
  return {'', -2, 0, 0, last, live(KEYS[2]), live(KEYS[3])}
end
local fence = tonumber(h[3]) or 0
return {h[1], redis.call('PTTL', KEYS[1]), tonumber(h[2]), fence,
        math.max(last, fence), live(KEYS[2]), live(KEYS[3])}
