-- Redeems a refresh token at most once. With rotation the session gets the successor pair and
-- remembers the redeemed token: presenting it again inside the retry window returns the same
-- successor (the client lost the answer); after the window, or presenting an older ancestor, is
-- reuse and ends the session. Without rotation the refresh token stays and keeps its expiry.
-- Either way the access key is overwritten, so the previous access token ends.
-- KEYS: session, access, user index, user snapshot
-- ARGV: presented digest, new access digest, access ttl ms, new refresh digest, refresh ttl ms,
--       session id, requested scope ('' keeps the session's), client id, rotate (1/0),
--       retry window ms
-- Returns {0} invalid, {2} scope too wide, {4, user uuid} reuse (session ended),
-- or {1 (rotated) | 3 (retry), user json, client id, scope, access ttl ms, refresh ttl ms}.
--
-- The session key, its index entry and the index and snapshot keys are kept alive up to a
-- horizon ('kx') a step beyond the refresh expiry ('rx'), and moved only when a refresh passes
-- it: most refreshes then write just the session hash and the access key. 'rx' decides
-- whether the session is live.

-- The fields a rotation needs; the rest only when the token is not the current one.
local f = redis.call('HMGET', KEYS[1], 'rh', 'cid', 'sc', 'ph', 'anc', 'mx', 'rx', 'g', 'kx')
local user = redis.call('GET', KEYS[4])
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
local presented = ARGV[1]
local rotate = ARGV[9] == '1'

local function end_session()
  local uid = redis.call('HGET', KEYS[1], 'uid')
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[6])
  if redis.call('ZCARD', KEYS[3]) == 0 then
    redis.call('DEL', KEYS[3], KEYS[4])
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
    local pt = tonumber(redis.call('HGET', KEYS[1], 'pt'))
    -- A window of 0 allows no retry, even within the same millisecond.
    local window = tonumber(ARGV[10])
    if window > 0 and now - pt <= window and f[1] == ARGV[4] then
      if f[2] ~= ARGV[8] then
        return {0}
      end
      return {3, user, f[2], f[3], math.max(redis.call('PTTL', KEYS[2]), 0), rx - now}
    end
    return end_session()
  end
  if f[5] and is_ancestor(f[5]) then
    return end_session()
  end
  return {0}
end
if f[2] ~= ARGV[8] then
  return {0}
end

local scope = f[3]
if ARGV[7] ~= '' then
  local have = ' ' .. scope .. ' '
  for s in string.gmatch(ARGV[7], '%S+') do
    if not string.find(have, ' ' .. s .. ' ', 1, true) then
      return {2}
    end
  end
  scope = ARGV[7]
end

local g = tonumber(f[8]) + 1
local fields
local rexp
if rotate then
  rexp = now + tonumber(ARGV[5])
  local mx = tonumber(f[6]) or 0
  if mx > 0 and rexp > mx then
    rexp = mx
  end
  local anc = f[5] or ''
  if f[4] then
    anc = string.sub(anc .. string.sub(f[4], 1, 8), -64)
  end
  fields = {'rh', ARGV[4], 'ph', presented, 'pt', nows, 'anc', anc, 'rx', int(rexp), 'r', nows,
    'g', int(g)}
  local horizon = tonumber(f[9]) or 0
  if rexp > horizon then
    -- A quarter of the refresh validity, at most an hour.
    horizon = rexp + math.min(math.floor(tonumber(ARGV[5]) / 4), 3600000)
    table.insert(fields, 'kx')
    local hs = int(horizon)
    table.insert(fields, hs)
    redis.call('PEXPIREAT', KEYS[1], hs)
    redis.call('ZADD', KEYS[3], hs, ARGV[6])
    if redis.call('PTTL', KEYS[3]) < horizon - now then
      redis.call('PEXPIREAT', KEYS[3], hs)
      redis.call('PEXPIREAT', KEYS[4], hs)
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
redis.call('HSET', KEYS[1], unpack(fields))
local attl = math.min(tonumber(ARGV[3]), rexp - now)
if attl <= 0 then
  return {0}
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', int(attl))
return {1, user, f[2], scope, attl, rexp - now}
