-- Take a read hold of a read-write lock, or re-enter the one this token has.
-- KEYS[1] writer hash {P K}:rw:writer (owner, count, fence; as the mutex's)
-- KEYS[2] readers ZSET {P K}:rw:readers: token -> end of lease (ms, server
-- clock)
-- KEYS[3] waiting writers ZSET {P K}:rw:writers_waiting: token -> end of
-- the writer's claim
-- KEYS[4] cancel marker {P K}:cancel:<token> (set by rw_cancel.lua)
-- ARGV[1] reader token, ARGV[2] ttl in ms, ARGV[3] hold count after this
-- call (1 for a fresh acquisition)
--
-- Writer preference: a live claim of a waiting writer keeps new readers
-- out, so the readers already in drain and the writer gets its turn however
-- many readers keep arriving. A reader already in is not held back (it
-- re-enters), or it would wait on a writer that waits on it.
-- Each reader's lease is its own score: a reader that died stops counting
-- when its lease ends, never earlier. Read holds are shared: no fencing
-- token (0).
-- Returns {1, 0, lease left in ms} when held; {0, ms to wait, why} when not:
-- why 1 = a writer holds (ms = its lease left), 2 = a writer waits (ms =
-- until the first claim ends unless renewed); {-1, 0, 0} when this token's
-- acquire was cancelled, {-2, 0, 0} when re-entering a hold already gone.
-- #include _checks.lua
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ms(now))
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ms(now))
local function keep_until_last_lease()
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[2], ms(tonumber(last[2]) - now))
end
local mine = redis.call('ZSCORE', KEYS[2], ARGV[1])
if mine then
  local ends = math.max(tonumber(mine), now + ttl)
  redis.call('ZADD', KEYS[2], ms(ends), ARGV[1])
  keep_until_last_lease()
  return {1, 0, ends - now}
end
if count > 1 then
  return {-2, 0, 0}
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  return {-1, 0, 0}
end
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, redis.call('PTTL', KEYS[1]), 1}
end
local first = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
if first[1] then
  return {0, tonumber(first[2]) - now, 2}
end
redis.call('ZADD', KEYS[2], ms(now + ttl), ARGV[1])
keep_until_last_lease()
return {1, 0, ttl}
