-- Read a semaphore's holders in one consistent snapshot, without writing.
-- KEYS[1] holders ZSET (token -> end of lease, ms, server clock)
-- Returns {permits in use, {token, ms left, token, ms left, ...}}, the
-- soonest lease first; leases already over are not counted (the next
-- acquire removes them).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local live = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%.0f', now),
                        '+inf', 'WITHSCORES')
local out = {}
for i = 1, #live, 2 do
  out[#out + 1] = live[i]
  out[#out + 1] = tonumber(live[i + 1]) - now
end
return {#live / 2, out}
