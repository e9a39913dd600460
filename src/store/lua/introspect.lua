-- What a live token stands for (RFC 7662), or false.
-- KEYS: session, access, user snapshot
-- ARGV: 'a' or 'r', token digest
-- Returns {user json, client id, scope, created ms, refreshed ms, expires ms}.
local f = redis.call('HMGET', KEYS[1], 'rh', 'cid', 'sc', 'c', 'r', 'rx')
local user = redis.call('GET', KEYS[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- The session key may outlive the session by a step; 'rx' is its end.
if not f[1] or not user or tonumber(f[6]) <= now then
  return false
end
local expires
if ARGV[1] == 'a' then
  if redis.call('GET', KEYS[2]) ~= ARGV[2] then
    return false
  end
  expires = now + redis.call('PTTL', KEYS[2])
elseif f[1] == ARGV[2] then
  expires = tonumber(f[6])
else
  return false
end
return {user, f[2], f[3], f[4], f[5], expires}
