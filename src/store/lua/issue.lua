-- Starts a session: session hash, access key, the user's snapshot and index, in one step; past
-- the per-user cap it ends the user's sessions that expire first, O(log n) per login. Nothing is written if the
-- user's generation is no longer the one the login read before it read the user: all of the
-- user's sessions were ended meanwhile (disable, set-password, logout-all).
-- Returns {access ttl ms, refresh ttl ms, sessions ended by the cap, 1 if the user's snapshot
-- changed}, or nil if the generation has changed.
-- KEYS and ARGV: `IssueArgs` in store/lua/mod.rs, in this order.
local session, access, index, snapshot, generation = unpack(KEYS)
local access_digest, access_ttl_ms, refresh_digest, refresh_ttl_ms, session_id, user_uuid,
  user_json, client_id, scope, ip, user_agent, max_lifetime_ms, max_sessions, key_base,
  read_generation = unpack(ARGV)
if (redis.call('GET', generation) or '') ~= read_generation then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rttl = tonumber(refresh_ttl_ms)
local maxlife = tonumber(max_lifetime_ms)
local mx = 0
if maxlife > 0 then
  mx = now + maxlife
  rttl = math.min(rttl, maxlife)
end
local attl = math.min(tonumber(access_ttl_ms), rttl)
local rexp = now + rttl
-- Numbers go to Redis as text made with %d (see refresh.lua).
local function int(n)
  return string.format('%d', n)
end
local nows, rexps = int(now), int(rexp)
-- Every field stays within 64 bytes so Redis keeps the hash in its compact encoding.
-- 'kx': how long the key, its index entry and the index live (refresh.lua moves it ahead).
redis.call('HSET', session, 'rh', refresh_digest, 'rx', rexps, 'kx', rexps, 'mx', int(mx), 'uid', user_uuid,
  'cid', client_id, 'sc', scope, 'c', nows, 'r', nows, 'g', '0', 'ip', ip, 'ua', user_agent)
redis.call('PEXPIREAT', session, rexps)
redis.call('SET', access, access_digest, 'PX', int(attl))
-- Rewritten only when it changes: replicas that cache it then need a commit wait.
local rewritten = 0
local held = redis.call('GET', snapshot)
if held ~= user_json then
  redis.call('SET', snapshot, user_json, 'KEEPTTL')
  rewritten = 1
end
redis.call('ZADD', index, rexps, session_id)
local ended = 0
local trimmed = false
local cap = tonumber(max_sessions)
if cap > 0 then
  -- Past the cap, the entries with the earliest horizon go: those whose horizon has passed
  -- first, then the sessions that expire first (to within a step). One range read of just
  -- the excess, O(log n) per login, however large the cap.
  local excess = redis.call('ZRANGE', index, 0, -(cap + 1), 'WITHSCORES')
  local kept_new = false
  for i = 1, #excess, 2 do
    local sid = excess[i]
    if sid == session_id then
      kept_new = true
    else
      if tonumber(excess[i + 1]) > now then
        ended = ended + 1
      end
      redis.call('DEL', key_base .. 's:' .. sid, key_base .. 'a:' .. sid)
    end
  end
  if #excess > 0 then
    redis.call('ZREMRANGEBYRANK', index, 0, #excess / 2 - 1)
    trimmed = true
    -- The new session had one of the earliest horizons (a cap of one, say): it stays.
    if kept_new then
      redis.call('ZADD', index, rexps, session_id)
    end
  end
end
-- Below the cap, entries whose horizon has passed go here; at the cap the trim above took
-- them first, and any left go at the next login.
if not trimmed then
  redis.call('ZREMRANGEBYSCORE', index, '-inf', nows)
end
-- The index and the snapshot live as long as the user's longest session (Redis 7.0: GT; a
-- key without a TTL, one just made, counts as living forever there). A key that existed
-- before this script has one: only this script makes them, and it gives them one.
local function outlive(key, existed)
  if redis.call('PEXPIREAT', key, rexps, 'GT') == 0 and not existed
      and redis.call('PTTL', key) == -1 then
    redis.call('PEXPIREAT', key, rexps)
  end
end
-- Trimmed: it held more than the cap, so more than this session.
outlive(index, trimmed)
outlive(snapshot, held ~= false)
return {attl, rttl, ended, rewritten}
