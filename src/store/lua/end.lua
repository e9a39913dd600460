-- Ends a session given either of its live tokens: both keys go and the index forgets it.
-- KEYS and ARGV: `EndArgs` in store/lua/mod.rs, in this order.
local session, access, index, snapshot = unpack(KEYS)
local kind, digest, session_id, client_id = unpack(ARGV)
local f = redis.call('HMGET', session, 'cid', 'rh', 'rx')
if client_id ~= '' and f[1] ~= client_id then
  return 0
end
local live
if kind == 'a' then
  live = redis.call('GET', access) == digest
else
  -- The session key may outlive the session by a step; 'rx' is its end.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  live = f[2] == digest and tonumber(f[3]) > now
end
if not live then
  return 0
end
redis.call('DEL', session, access)
redis.call('ZREM', index, session_id)
if redis.call('ZCARD', index) == 0 then
  redis.call('DEL', index, snapshot)
end
return 1
