-- Shared by the scripts that take a lock: argument checks and the fencing
-- rule. Not a script of its own: embed.sh puts it where a script says
-- "-- #include _checks.lua", with @SCRIPT@ replaced by that script's name.
local function fail(message)
  error({err = 'ERR @SCRIPT@: ' .. message})
end
-- At most 15 digits: exact as a Lua number, and a PEXPIRE that Redis
-- accepts (a 20-digit ttl passes the pattern but PEXPIRE refuses it, which
-- would fail after the first write: Redis does not roll a script back).
local function positive_integer(value, what)
  if not value or not value:match('^[1-9][0-9]*$') or #value > 15 then
    fail(what .. ' must be an integer in [1, 10^15), got "' .. tostring(value) .. '"')
  end
  return tonumber(value)
end
local function flag(value, what)
  if value ~= '0' and value ~= '1' then
    fail(what .. ' must be "0" or "1", got "' .. tostring(value) .. '"')
  end
  return value == '1'
end
-- Issues the resource's next fencing token, max(last token + 1, server
-- clock in microseconds; `t` is a TIME reply), and records it in
-- `fence_key` for `keep_ms`. The clock carries tokens upwards across
-- everything that loses the record (its retention expiring, a restart
-- without persistence, a failover to a replica that missed the last
-- write), as long as the server clock does not step backwards and a new
-- master's clock is not behind the old one's by more than the failover
-- took; "last + 1" covers acquisitions within one microsecond and small
-- backward slews while the record exists. Tokens are ~1.8e15 < 2^53: exact
-- in Lua's doubles, but tostring() would print them as 1.8e+15, hence
-- '%.0f'. Redis 7 replicates a script's effects, not the script, so reading
-- TIME is allowed and replicas store the same token. Returns the token and
-- its text.
local function next_fence(fence_key, t, keep_ms)
  local now_us = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = tonumber(redis.call('GET', fence_key) or '0') or 0
  local fence = math.max(last + 1, now_us)
  local fence_text = string.format('%.0f', fence)
  redis.call('SET', fence_key, fence_text, 'PX', string.format('%.0f', keep_ms))
  return fence, fence_text
end
