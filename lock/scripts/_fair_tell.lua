-- Shared by the fair scripts: telling the head of the line. Not a script
-- of its own (see embed.sh).
-- The head's process listens on "<channel>:<host>:<pid>", its token up to
-- the last ':' (tokens are "<host>:<pid>:<random>", FairKeys::
-- WaiterChannel), so a release wakes that one process, not every process
-- with a waiter on the lock; a token without ':' is told on the channel
-- itself. With nobody in line, "" goes to the channel itself. The message
-- is the head's token unless a handoff adds its fencing token.
local function tell_head(channel, head, message)
  message = message or head
  if not head then
    redis.call('PUBLISH', channel, '')
    return
  end
  local process = string.match(head, '^(.*):[^:]*$')
  redis.call('PUBLISH', process and (channel .. ':' .. process) or channel, message)
end
