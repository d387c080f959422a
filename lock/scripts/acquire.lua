-- Acquire or re-enter a lock.
-- KEYS[1] owner hash {P K}: fields owner, count, fence
-- KEYS[2] fence counter {P K}:fence (never expires: tokens only go up)
-- KEYS[3] cancel marker {P K}:cancel:<token> (set by cancel.lua)
-- ARGV[1] owner token, ARGV[2] ttl in ms, ARGV[3] hold count after this call
-- (1 for a fresh acquisition), ARGV[4] "1" to issue a fencing token
-- Returns {1, fence, pttl} when held, {0, pttl, 0} when busy,
-- {-1, 0, 0} when this token's acquire was cancelled,
-- {-2, 0, 0} when re-entering a hold that is already gone.
-- Every argument is checked before the first write: Redis does not roll a
-- script back, so an error between HSET and PEXPIRE would leave an owner
-- hash that never expires (a lock nobody can take again).
local function positive_integer(value, what)
  if not value or not value:match('^[1-9][0-9]*$') then
    error({err = 'ERR acquire: ' .. what .. ' must be an integer >= 1, got "' ..
                 tostring(value) .. '"'})
  end
  return tonumber(value)
end
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
if ARGV[4] ~= '0' and ARGV[4] ~= '1' then
  return redis.error_reply('ERR acquire: fencing (ARGV[4]) must be "0" or "1", got "' ..
                           tostring(ARGV[4]) .. '"')
end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner == ARGV[1] then
  -- Re-entry by the same holder, or a retry of an acquire whose reply was
  -- lost: setting (not incrementing) the count keeps a retry idempotent.
  redis.call('HSET', KEYS[1], 'count', ARGV[3])
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl < ttl then
    redis.call('PEXPIRE', KEYS[1], ttl)
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
if ARGV[4] == '1' then
  fence = redis.call('INCR', KEYS[2])
end
-- ttl was validated above, so nothing between these two writes can fail.
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'count', 1, 'fence', fence)
redis.call('PEXPIRE', KEYS[1], ttl)
return {1, fence, ttl}
