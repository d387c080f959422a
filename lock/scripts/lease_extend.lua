-- Extend a lease kept as a ZSET score, owner-checked: a semaphore permit
-- ({P K}:sem:holders), a read hold ({P K}:rw:readers), a waiting writer's
-- claim ({P K}:rw:writers_waiting) or a place in a fair queue
-- ({P K}:fair:timeouts, with {P K}:fair:queue as KEYS[2]).
-- KEYS[1] ZSET token -> end of lease (ms, server clock); KEYS[2..] keys
-- that must live as long as it
-- ARGV[1] token, ARGV[2] new lease in ms, ARGV[3] (optional) "renew": a
-- background renewal, which never shortens the lease (as extend.lua)
-- Returns 1 when the lease now runs at least ARGV[2] from now, 0 when the
-- token has no live lease here: released, or ended (its permit, read hold or
-- place in the queue may already be someone else's, so it is not revived).
if not ARGV[2] or not ARGV[2]:match('^[1-9][0-9]*$') or #ARGV[2] > 15 then
  error({err = 'ERR lease_extend: lease (ARGV[2], ms) must be an integer in [1, 10^15), got "' ..
               tostring(ARGV[2]) .. '"'})
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
local ends = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not ends or tonumber(ends) <= now then
  if ends then
    redis.call('ZREM', KEYS[1], ARGV[1])
    for i = 2, #KEYS do redis.call('ZREM', KEYS[i], ARGV[1]) end
  end
  return 0
end
local target = now + tonumber(ARGV[2])
if ARGV[3] == 'renew' and tonumber(ends) >= target then
  return 1
end
redis.call('ZADD', KEYS[1], ms(target), ARGV[1])
-- The keys expire with the last lease among their members.
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ms(tonumber(last[2]) - now))
end
return 1
