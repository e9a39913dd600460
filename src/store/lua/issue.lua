-- Starts a session: session hash, access key, the user's snapshot and index, in one step; past
-- the per-user cap it ends the user's sessions that expire first, O(log n) per login. Nothing is written if the
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
-- Index entries whose horizon has passed go first: their sessions have ended.
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', nows)
redis.call('ZADD', KEYS[3], rexps, ARGV[5])
local ended = 0
local cap = tonumber(ARGV[13])
if cap > 0 then
  -- Past the cap, the entries with the earliest horizon go (the sessions that expire first,
  -- to within a step): one range read of just the excess, O(log n) per login, however large
  -- the cap.
  local excess = redis.call('ZRANGE', KEYS[3], 0, -(cap + 1), 'WITHSCORES')
  local kept_new = false
  for i = 1, #excess, 2 do
    local sid = excess[i]
    if sid == ARGV[5] then
      kept_new = true
    else
      if tonumber(excess[i + 1]) > now then
        ended = ended + 1
      end
      redis.call('DEL', ARGV[14] .. 's:' .. sid, ARGV[14] .. 'a:' .. sid)
    end
  end
  if #excess > 0 then
    redis.call('ZREMRANGEBYRANK', KEYS[3], 0, #excess / 2 - 1)
    -- The new session had one of the earliest horizons (a cap of one, say): it stays.
    if kept_new then
      redis.call('ZADD', KEYS[3], rexps, ARGV[5])
    end
  end
end
-- The index and the snapshot live as long as the user's longest session (Redis 7.0: GT; a
-- key without a TTL, one just made, counts as living forever there).
local function outlive(key)
  if redis.call('PEXPIREAT', key, rexps, 'GT') == 0 and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, rexps)
  end
end
outlive(KEYS[3])
outlive(KEYS[4])
return {attl, rttl, ended, rewritten}
