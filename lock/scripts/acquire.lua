-- Acquire or re-enter a lock.
-- KEYS[1] owner hash {P K}: fields owner, count, fence
-- KEYS[2] fence record {P K}:fence: the last token issued, PX retention
-- KEYS[3] cancel marker {P K}:cancel:<token> (set by cancel.lua)
-- ARGV[1] owner token, ARGV[2] ttl in ms, ARGV[3] hold count after this call
-- (1 for a fresh acquisition), ARGV[4] "1" to issue a fencing token,
-- ARGV[5] fence record retention in ms (the record lives max(this, ttl))
--
-- Fencing token = max(last token + 1, server clock in microseconds): see
-- next_fence in _checks.lua for why the clock keeps tokens increasing.
-- Returns {1, fence, pttl} when held, {0, pttl, 0} when busy,
-- {-1, 0, 0} when this token's acquire was cancelled,
-- {-2, 0, 0} when re-entering a hold that is already gone.
-- Every argument is checked before the first write: Redis does not roll a
-- script back, so an error between HSET and PEXPIRE would leave an owner
-- hash that never expires (a lock nobody can take again).
-- #include _checks.lua
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
local fencing = flag(ARGV[4], 'fencing (ARGV[4])')
local retention = positive_integer(ARGV[5], 'fence retention (ARGV[5], ms)')
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
  -- Re-entry by the same holder, or a retry of an acquire whose reply was
  -- lost: setting (not incrementing) the count keeps a retry idempotent.
  redis.call('HSET', KEYS[1], 'count', ARGV[3])
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < ttl then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    pttl = ttl
  end
  return {1, tonumber(redis.call('HGET', KEYS[1], 'fence')), pttl}
end
if count > 1 then
  -- The caller believes it holds the lock, but its hold expired or passed
  -- to another owner: re-entering must not quietly start a new hold.
  return {-2, 0, 0}
end
if owner then
  return {0, redis.call('PTTL', KEYS[1]), 0}
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  return {-1, 0, 0}
end
local fence = 0
local fence_text = '0'
if fencing then
  -- Never shorter than the lease: a record gone while its hold is still
  -- young would leave only the clock to guard the next token.
  fence, fence_text = next_fence(KEYS[2], redis.call('TIME'), math.max(retention, ttl))
end
-- ttl was validated above, so nothing between these two writes can fail.
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'count', 1, 'fence', fence_text)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, fence, ttl}
