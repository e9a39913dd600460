-- Ends a session given either of its live tokens: both keys go and the index forgets it.
-- KEYS: session, access, user index, user snapshot
-- ARGV: 'a' or 'r', token digest, session id, client id ('' = any client)
local f = redis.call('HMGET', KEYS[1], 'cid', 'rh', 'rx')
if ARGV[4] ~= '' and f[1] ~= ARGV[4] then
  return 0
end
local live
if ARGV[1] == 'a' then
  live = redis.call('GET', KEYS[2]) == ARGV[2]
else
  -- The session key may outlive the session by a step; 'rx' is its end.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  live = f[2] == ARGV[2] and tonumber(f[3]) > now
end
if not live then
  return 0
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[3])
if redis.call('ZCARD', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[3], KEYS[4])
end
return 1
