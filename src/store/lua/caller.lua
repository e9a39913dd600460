-- Prelude of the caller's-own-sessions script: the caller's access token must be live.
-- KEYS and ARGV: `OwnSessionsArgs` in store/lua/mod.rs, in this order (sessions.lua's, then
-- the caller's access key and digest).
local _, _, _, caller_access = unpack(KEYS)
local _, _, _, _, _, _, caller_digest = unpack(ARGV)
if redis.call('GET', caller_access) ~= caller_digest then
  return false
end
