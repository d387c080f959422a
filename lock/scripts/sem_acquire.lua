-- Take one permit of a semaphore, or re-enter the permit this token holds.
-- KEYS[1] holders ZSET {P K}:sem:holders: token -> end of its lease (ms,
-- server clock)
-- KEYS[2] cancel marker {P K}:cancel:<token> (set by sem_cancel.lua)
-- ARGV[1] holder token, ARGV[2] ttl in ms, ARGV[3] hold count after this
-- call (1 for a fresh acquisition), ARGV[4] permits (the policy's N)
--
-- Leases are kept as scores, not as key expiries, so that each permit has
-- its own: a holder that died (kill -9, SIGSTOP past its lease) gives its
-- permit back exactly when its lease ends (score <= server time), never
-- earlier, and with no one having to notice. The whole ZSET also expires
-- with its last lease, so a semaphore nobody holds leaves no key.
-- The permit count is the caller's, read from its policy on every call:
-- lowering it leaves holders above the new N their permits until they
-- release or expire, and nothing is granted until fewer than N are held.
-- Permits are shared, so no fencing token is issued (0).
-- Returns {1, 0, lease left in ms} when held, {0, ms until the earliest
-- lease ends, permits in use} when all are taken, {-1, 0, 0} when this
-- token's acquire was cancelled, {-2, 0, 0} when re-entering a permit that is
-- already gone.
-- #include _checks.lua
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
local permits = positive_integer(ARGV[4], 'permits (ARGV[4])')
-- Redis 7 replicates a script's effects, so reading the clock is allowed
-- and replicas store the same scores.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
-- A lease that ended at or before now is over: its permit returns now.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms(now))
local function keep_until_last_lease()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], ms(tonumber(last[2]) - now))
end
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
if mine then
  -- Re-entry, or a retry of an acquire whose reply was lost: the same one
  -- permit, its lease never shortened.
  local ends = math.max(tonumber(mine), now + ttl)
  redis.call('ZADD', KEYS[1], ms(ends), ARGV[1])
  keep_until_last_lease()
  return {1, 0, ends - now}
end
if count > 1 then
  return {-2, 0, 0}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  return {-1, 0, 0}
end
local in_use = redis.call('ZCARD', KEYS[1])
if in_use >= permits then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return {0, tonumber(first[2]) - now, in_use}
end
redis.call('ZADD', KEYS[1], ms(now + ttl), ARGV[1])
keep_until_last_lease()
return {1, 0, ttl}
