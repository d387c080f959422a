-- Give back a semaphore permit, owner-checked.
-- KEYS[1] holders ZSET {P K}:sem:holders (token -> end of lease, ms)
-- ARGV[1] holder token, ARGV[2] release channel
-- Returns 1 when this token's live permit was given back (and waiters told),
-- 0 when it held none: never held, released already, or its lease ended
-- (then the permit was already free for others; removing the stale entry
-- changes nothing they can see).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(ends) <= now then
  return 0
end
redis.call('PUBLISH', ARGV[2], KEYS[1])
return 1
