-- Read a fair lock's state in one consistent snapshot, without writing.
-- KEYS[1] owner hash, KEYS[2] queue ZSET, KEYS[3] timeouts ZSET,
-- KEYS[4] fence record
-- Returns {owner or "", lease left in ms (-2 when free), hold count, fence
-- of this hold, last fence issued (as inspect.lua), {waiter token, ms its
-- place has left, ...} in queue order}; places already over are left out.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local queue = redis.call('ZRANGE', KEYS[2], 0, -1)
local waiters = {}
for _, token in ipairs(queue) do
  local ends = tonumber(redis.call('ZSCORE', KEYS[3], token) or '0')
  if ends > now then
    waiters[#waiters + 1] = token
    waiters[#waiters + 1] = ends - now
  end
end
local h = redis.call('HMGET', KEYS[1], 'owner', 'count', 'fence')
local last = tonumber(redis.call('GET', KEYS[4]) or '0') or 0
if not h[1] then
  return {'', -2, 0, 0, last, waiters}
end
local fence = tonumber(h[3]) or 0
return {h[1], redis.call('PTTL', KEYS[1]), tonumber(h[2]), fence,
        math.max(last, fence), waiters}
