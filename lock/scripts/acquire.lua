-- Acquire or re-enter a lock.
-- KEYS[1] owner hash {P K}: fields owner, count, fence
-- KEYS[2] fence record {P K}:fence: the last token issued, PX retention
-- KEYS[3] cancel marker {P K}:cancel:<token> (set by cancel.lua)
-- ARGV[1] owner token, ARGV[2] ttl in ms, ARGV[3] hold count after this call
-- (1 for a fresh acquisition), ARGV[4] "1" to issue a fencing token,
-- ARGV[5] fence record retention in ms (the record lives max(this, ttl))
--
-- Fencing token = max(last token + 1, server clock in microseconds).
-- The clock (TIME) carries tokens upwards across everything that loses the
-- record: its retention expiring, a restart without persistence, a failover
-- to a replica that missed the last write. That holds as long as the server
-- clock does not step backwards, and a new master's clock is not behind the
-- old one's by more than the failover took (NTP-synced hosts). "last + 1"
-- covers acquisitions within one microsecond and small backward slews while
-- the record exists. Tokens are ~1.8e15 < 2^53: exact in Lua's doubles, but
-- tostring() would print them as 1.8e+15, hence string.format('%.0f').
-- Redis 7 replicates a script's effects, not the script, so reading TIME
-- here is allowed and replicas store the same token.
-- Returns {1, fence, pttl} when held, {0, pttl, 0} when busy,
-- {-1, 0, 0} when this token's acquire was cancelled,
-- {-2, 0, 0} when re-entering a hold that is already gone.
-- Every argument is checked before the first write: Redis does not roll a
-- script back, so an error between HSET and PEXPIRE would leave an owner
-- hash that never expires (a lock nobody can take again).
local function fail(message)
  error({err = 'ERR acquire: ' .. message})
end
-- At most 15 digits: exact as a Lua number, and a PEXPIRE that Redis
-- accepts (a 20-digit ttl passes the pattern but PEXPIRE refuses it, which
-- would again fail after the HSET).
local function positive_integer(value, what)
  if not value or not value:match('^[1-9][0-9]*$') or #value > 15 then
    fail(what .. ' must be an integer in [1, 10^15), got "' .. tostring(value) .. '"')
  end
  return tonumber(value)
end
local ttl = positive_integer(ARGV[2], 'ttl (ARGV[2], ms)')
local count = positive_integer(ARGV[3], 'hold count (ARGV[3])')
if ARGV[4] ~= '0' and ARGV[4] ~= '1' then
  fail('fencing (ARGV[4]) must be "0" or "1", got "' .. tostring(ARGV[4]) .. '"')
end
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
if ARGV[4] == '1' then
  local now = redis.call('TIME')
  local now_us = tonumber(now[1]) * 1000000 + tonumber(now[2])
  local last = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
  fence = math.max(last + 1, now_us)
  fence_text = string.format('%.0f', fence)
  -- Never shorter than the lease: a record gone while its hold is still
  -- young would leave only the clock to guard the next token.
  redis.call('SET', KEYS[2], fence_text, 'PX',
             string.format('%d', math.max(retention, ttl)))
end
-- ttl was validated above, so nothing between these two writes can fail.
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'count', 1, 'fence', fence_text)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, fence, ttl}
