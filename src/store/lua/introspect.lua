-- What a live token stands for (RFC 7662), or false.
-- Returns {user json, client id, scope, created ms, refreshed ms, expires ms}.
-- KEYS and ARGV: `IntrospectArgs` in store/lua/mod.rs, in this order.
local session, access, snapshot = unpack(KEYS)
local kind, digest = unpack(ARGV)
local f = redis.call('HMGET', session, 'rh', 'cid', 'sc', 'c', 'r', 'rx')
local user = redis.call('GET', snapshot)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The session key may outlive the session by a step; 'rx' is its end.
if not f[1] or not user or tonumber(f[6]) <= now then
  return false
end
local expires
if kind == 'a' then
  if redis.call('GET', access) ~= digest then
    return false
  end
  expires = now + redis.call('PTTL', access)
elseif f[1] == digest then
  expires = tonumber(f[6])
else
  return false
end
return {user, f[2], f[3], f[4], f[5], expires}
