-- The caller's own sessions, authorised by the caller's live access token.
-- KEYS: caller's access key, user index, user snapshot
-- ARGV: caller's access digest, key base 'P:{T}:', op ('list' | 'end' | 'end_all'),
--       target session id (for 'end')
-- Returns false if the caller's token is not live; else
--   list: {sid, created, refreshed, client, ip, user agent, ...}; end: 1 or 0; end_all: count.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return false
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local base = ARGV[2]
local op = ARGV[3]
if op == 'list' then
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local f = redis.call('HMGET', base .. 's:' .. sid, 'c', 'r', 'cid', 'ip', 'ua')
    if f[1] then
      table.insert(out, sid)
      for i = 1, 5 do
        table.insert(out, f[i] or '')
      end
    else
      redis.call('ZREM', KEYS[2], sid)
    end
  end
  return out
end
local function finish(sid)
  redis.call('DEL', base .. 's:' .. sid, base .. 'a:' .. sid)
  redis.call('ZREM', KEYS[2], sid)
end
local ended = 0
if op == 'end' then
  if redis.call('ZSCORE', KEYS[2], ARGV[4]) and redis.call('EXISTS', base .. 's:' .. ARGV[4]) == 1 then
    finish(ARGV[4])
    ended = 1
  end
else
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    if redis.call('EXISTS', base .. 's:' .. sid) == 1 then
      ended = ended + 1
    end
    finish(sid)
  end
end
if redis.call('ZCARD', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[2], KEYS[3])
end
return ended
