-- One user's sessions: list them, end one, or end all. Run after caller.lua for a user's own
-- sessions, alone for the admin commands. Each call does bounded work: 'list' reads at most
-- `limit` sessions (the latest first), 'end_all' ends at most `limit` and says whether more
-- are left, for the caller to call again.
-- KEYS: user index, user snapshot, user generation
-- ARGV: key base 'P:{T}:', op ('list' | 'end' | 'end_all'), target session id (for 'end'),
--       limit, new generation (for 'end_all'), generation ttl ms
-- Returns list: {sid, created, refreshed, client, ip, user agent, ends (rx), ...}; end: 1 or 0;
--   end_all: {count, 1 if more are left}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local base = ARGV[1]
local op = ARGV[2]
local limit = tonumber(ARGV[4])
if op == 'list' then
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, limit - 1, 'REV')) do
    local f = redis.call('HMGET', base .. 's:' .. sid, 'c', 'r', 'cid', 'ip', 'ua', 'rx')
    if f[1] and tonumber(f[6]) > now then
      table.insert(out, sid)
      for i = 1, 6 do
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
local function forget_user_if_empty()
  if redis.call('ZCARD', KEYS[1]) == 0 then
    redis.call('DEL', KEYS[1], KEYS[2])
  end
end
if op == 'end' then
  local ended = 0
  if redis.call('ZSCORE', KEYS[1], ARGV[3]) and live(ARGV[3]) then
    finish(ARGV[3])
    ended = 1
  end
  forget_user_if_empty()
  return ended
end
-- end_all: a login that read the user before this cannot start a session after it (issue.lua).
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, limit - 1)) do
  if live(sid) then
    ended = ended + 1
  end
  finish(sid)
end
forget_user_if_empty()
local more = 0
if redis.call('EXISTS', KEYS[1]) == 1 then
  more = 1
end
return {ended, more}
