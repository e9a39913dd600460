-- One user's sessions: list them, end one, or end all. Run after caller.lua for a user's own
-- sessions, alone for the admin commands.
-- KEYS: user index, user snapshot
-- ARGV: key base 'P:{T}:', op ('list' | 'end' | 'end_all'), target session id (for 'end')
-- Returns list: {sid, created, refreshed, client, ip, user agent, ...}; end: 1 or 0;
--   end_all: count.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local base = ARGV[1]
local op = ARGV[2]
if op == 'list' then
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    local f = redis.call('HMGET', base .. 's:' .. sid, 'c', 'r', 'cid', 'ip', 'ua', 'rx')
    if f[1] and tonumber(f[6]) > now then
      table.insert(out, sid)
      for i = 1, 5 do
        table.insert(out, f[i] or '')
      end
    else
      redis.call('ZREM', KEYS[1], sid)
    end
  end
  return out
end
-- Session keys may outlive their sessions by a step; 'rx' is the end.
local function live(sid)
  local rx = tonumber(redis.call('HGET', base .. 's:' .. sid, 'rx'))
  return rx ~= nil and rx > now
end
local function finish(sid)
  redis.call('DEL', base .. 's:' .. sid, base .. 'a:' .. sid)
  redis.call('ZREM', KEYS[1], sid)
end
local ended = 0
if op == 'end' then
  if redis.call('ZSCORE', KEYS[1], ARGV[3]) and live(ARGV[3]) then
    finish(ARGV[3])
    ended = 1
  end
else
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if live(sid) then
      ended = ended + 1
    end
    finish(sid)
  end
end
if redis.call('ZCARD', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[1], KEYS[2])
end
return ended
