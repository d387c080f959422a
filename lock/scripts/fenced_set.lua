-- Write a value guarded by a fencing token: accepted only when the token is
-- at least the highest token that ever wrote this resource, so a holder that
-- was paused past its lease (and lost the lock) cannot overwrite the work of
-- the holder that came after it.
-- An equal token is accepted: one hold writes several times under its one
-- token. Two different holds never share a token (acquire.lua issues
-- max(last + 1, server clock in us), see there for the clock assumption), so
-- equal means "the same hold", and nothing else needs storing to tell holds
-- apart.
-- KEYS[1] resource hash: fields value, fence
-- ARGV[1] value, ARGV[2] fencing token (a positive integer)
-- Returns {1, token} when written, {0, highest} when refused as stale.
-- Token 0 is what a holder under a "fencing": false policy has: no token at
-- all. Accepting it would let that write pass any empty resource, so it is
-- an error here too (the library refuses it before calling).
if not ARGV[2]:match('^[1-9][0-9]*$') then
  return redis.error_reply(
    'ERR fenced_set: fencing token must be an integer >= 1, got "' ..
    ARGV[2] .. '"')
end
local token = tonumber(ARGV[2])
local highest = tonumber(redis.call('HGET', KEYS[1], 'fence') or '0')
if token < highest then
  return {0, highest}
end
-- The token is stored as the caller's decimal text: tostring() of a Lua
-- number prints 16-digit tokens as 1.7e+15 and would lose digits.
redis.call('HSET', KEYS[1], 'value', ARGV[1], 'fence', ARGV[2])
return {1, token}
