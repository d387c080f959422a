-- Release one level of a held lock, owner-checked.
-- KEYS[1] owner hash
-- ARGV[1] owner token, ARGV[2] hold count after this call,
-- ARGV[3] release channel, ARGV[4] ms to keep the key after the last release
-- (hold_at_least; 0 = delete now)
-- Returns 1 when released (or count lowered), 0 when not held by this token.
if redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[1], 'count', ARGV[2])
  return 1
end
local keep = tonumber(ARGV[4])
if keep > 0 then
  -- Run-once jobs: the key stays, unowned by any live holder, until the
  -- minimum hold time has passed.
  redis.call('HSET', KEYS[1], 'count', 0)
  redis.call('PEXPIRE', KEYS[1], keep)
  return 1
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[3], KEYS[1])
return 1
