-- Starts a session: session hash, access key, the user's snapshot and index, in one step; past
-- the per-user cap it ends the user's sessions that expire first. Nothing is written if the
-- user's generation is no longer the one the login read before it read the user: all of the
-- user's sessions were ended meanwhile (disable, set-password, logout-all).
-- KEYS: session, access, user index, user snapshot, user generation
-- ARGV: access digest, access ttl ms, refresh digest, refresh ttl ms, session id,
--       user uuid, user json, client id, scope, ip, user agent,
--       max lifetime ms (0 = none), max sessions per user (0 = unlimited), key base 'P:{T}:',
--       generation read by the login ('' = none)
-- Returns {access ttl ms, refresh ttl ms, sessions ended by the cap, 1 if the user's snapshot
-- changed}, or nil if the generation has changed.
if (redis.call('GET', KEYS[5]) or '') ~= ARGV[15] then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rttl = tonumber(ARGV[4])
local maxlife = tonumber(ARGV[12])
local mx = 0
if maxlife > 0 then
  mx = now + maxlife
  rttl = math.min(rttl, maxlife)
end
local attl = math.min(tonumber(ARGV[2]), rttl)
local rexp = now + rttl
-- Numbers go to Redis as text made with %d (see refresh.lua).
local function int(n)
  return string.format('%d', n)
end
local nows, rexps = int(now), int(rexp)
-- Every field stays within 64 bytes so Redis keeps the hash in its compact encoding.
-- 'kx': how long the key, its index entry and the index live (refresh.lua moves it ahead).
redis.call('HSET', KEYS[1], 'rh', ARGV[3], 'rx', rexps, 'kx', rexps, 'mx', int(mx), 'uid', ARGV[6],
  'cid', ARGV[8], 'sc', ARGV[9], 'c', nows, 'r', nows, 'g', '0', 'ip', ARGV[10], 'ua', ARGV[11])
redis.call('PEXPIREAT', KEYS[1], rexps)
redis.call('SET', KEYS[2], ARGV[1], 'PX', int(attl))
-- Rewritten only when it changes: replicas that cache it then need a commit wait.
local rewritten = 0
if redis.call('GET', KEYS[4]) ~= ARGV[7] then
  redis.call('SET', KEYS[4], ARGV[7], 'KEEPTTL')
  rewritten = 1
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', nows)
redis.call('ZADD', KEYS[3], rexps, ARGV[5])
local ended = 0
local cap = tonumber(ARGV[13])
if cap > 0 and redis.call('ZCARD', KEYS[3]) > cap then
  -- Index scores run up to a step past a session's end: drop the sessions that have ended
  -- first, then end the live ones that expire first. The walk is bounded: with a finite cap
  -- the index holds about the cap and the sessions that ended within a step; after the cap was
  -- lowered, later logins take the rest.
  local live = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[3], 0, 2 * cap + 63)) do
    local rx = tonumber(redis.call('HGET', ARGV[14] .. 's:' .. sid, 'rx'))
    if rx and rx > now then
      table.insert(live, sid)
    else
      redis.call('DEL', ARGV[14] .. 's:' .. sid, ARGV[14] .. 'a:' .. sid)
      redis.call('ZREM', KEYS[3], sid)
    end
  end
  local excess = #live - cap
  for _, sid in ipairs(live) do
    if excess <= 0 then
      break
    end
    if sid ~= ARGV[5] then
      redis.call('DEL', ARGV[14] .. 's:' .. sid, ARGV[14] .. 'a:' .. sid)
      redis.call('ZREM', KEYS[3], sid)
      ended = ended + 1
      excess = excess - 1
    end
  end
end
-- The index and the snapshot live as long as the user's longest session.
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')[2]
redis.call('PEXPIREAT', KEYS[3], last)
redis.call('PEXPIREAT', KEYS[4], last)
return {attl, rttl, ended, rewritten}
