-- Redeems a refresh token at most once. With rotation the session gets the successor pair and
-- remembers the redeemed token: presenting it again inside the retry window returns the same
-- successor (the client lost the answer); after the window, or presenting an older ancestor, is
-- reuse and ends the session. Without rotation the refresh token stays and keeps its expiry.
-- Either way the access key is overwritten, so the previous access token ends.
-- Returns {0} invalid, {2} scope too wide, {4, user uuid} reuse (session ended),
-- or {1 (rotated) | 3 (retry), user json, client id, scope, access ttl ms, refresh ttl ms}.
--
-- The session key, its index entry and the index and snapshot keys are kept alive up to a
-- horizon ('kx') a step beyond the refresh expiry ('rx'), and moved only when a refresh passes
-- it: most refreshes then write just the session hash and the access key. 'rx' decides
-- whether the session is live.
-- KEYS and ARGV: `RefreshArgs` in store/lua/mod.rs, in this order.
local session, access, index, snapshot = unpack(KEYS)
local presented, access_digest, access_ttl_ms, refresh_digest, refresh_ttl_ms, session_id,
  requested_scope, client_id, rotation, retry_window_ms = unpack(ARGV)

-- The fields a rotation needs; the rest only when the token is not the current one.
local f = redis.call('HMGET', session, 'rh', 'cid', 'sc', 'ph', 'anc', 'mx', 'rx', 'g', 'kx')
local user = redis.call('GET', snapshot)
if not f[1] or not user then
  return {0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Numbers go to Redis as text made with %d: a Lua number would be formatted with %.17g,
-- printf's slow path, once per argument.
local function int(n)
  return string.format('%d', n)
end
local nows = int(now)
local rx = tonumber(f[7])
if rx <= now then
  return {0}
end
local rotate = rotation == '1'

local function end_session()
  local uid = redis.call('HGET', session, 'uid')
  redis.call('DEL', session, access)
  redis.call('ZREM', index, session_id)
  if redis.call('ZCARD', index) == 0 then
    redis.call('DEL', index, snapshot)
  end
  return {4, uid}
end

-- Older ancestors: 32-bit digest prefixes, 8 hex characters each, the last 8 of them.
local function is_ancestor(anc)
  local prefix = string.sub(presented, 1, 8)
  for i = 1, #anc, 8 do
    if string.sub(anc, i, i + 7) == prefix then
      return true
    end
  end
  return false
end

if f[1] ~= presented then
  if rotate and f[4] == presented then
    local pt = tonumber(redis.call('HGET', session, 'pt'))
    -- A window of 0 allows no retry, even within the same millisecond.
    local window = tonumber(retry_window_ms)
    if window > 0 and now - pt <= window and f[1] == refresh_digest then
      if f[2] ~= client_id then
        return {0}
      end
      return {3, user, f[2], f[3], math.max(redis.call('PTTL', access), 0), rx - now}
    end
    return end_session()
  end
  if f[5] and is_ancestor(f[5]) then
    return end_session()
  end
  return {0}
end
if f[2] ~= client_id then
  return {0}
end

local scope = f[3]
if requested_scope ~= '' then
  local have = ' ' .. scope .. ' '
  for s in string.gmatch(requested_scope, '%S+') do
    if not string.find(have, ' ' .. s .. ' ', 1, true) then
      return {2}
    end
  end
  scope = requested_scope
end

local g = tonumber(f[8]) + 1
local fields
local rexp
if rotate then
  rexp = now + tonumber(refresh_ttl_ms)
  local mx = tonumber(f[6]) or 0
  if mx > 0 and rexp > mx then
    rexp = mx
  end
  local anc = f[5] or ''
  if f[4] then
    anc = string.sub(anc .. string.sub(f[4], 1, 8), -64)
  end
  fields = {'rh', refresh_digest, 'ph', presented, 'pt', nows, 'anc', anc, 'rx', int(rexp), 'r', nows,
    'g', int(g)}
  local horizon = tonumber(f[9]) or 0
  if rexp > horizon then
    -- A quarter of the refresh validity, at most an hour.
    horizon = rexp + math.min(math.floor(tonumber(refresh_ttl_ms) / 4), 3600000)
    table.insert(fields, 'kx')
    local hs = int(horizon)
    table.insert(fields, hs)
    redis.call('PEXPIREAT', session, hs)
    redis.call('ZADD', index, hs, session_id)
    if redis.call('PTTL', index) < horizon - now then
      redis.call('PEXPIREAT', index, hs)
      redis.call('PEXPIREAT', snapshot, hs)
    end
  end
else
  rexp = rx
  fields = {'r', nows, 'g', int(g)}
end
if scope ~= f[3] then
  table.insert(fields, 'sc')
  table.insert(fields, scope)
end
redis.call('HSET', session, unpack(fields))
local attl = math.min(tonumber(access_ttl_ms), rexp - now)
if attl <= 0 then
  return {0}
end
redis.call('SET', access, access_digest, 'PX', int(attl))
return {1, user, f[2], scope, attl, rexp - now}
