-- One user's sessions: list them, end one, or end all. Run after caller.lua for a user's own
-- sessions, alone for the admin commands. Each call does bounded work: 'list' reads at most
-- `limit` sessions (the latest first), 'end_all' ends at most `limit` and says whether more
-- are left, for the caller to call again.
-- Returns list: {sid, created, refreshed, client, ip, user agent, ends (rx), ...}; end: 1 or 0;
--   end_all: {count, 1 if more are left}.
-- KEYS and ARGV: `SessionsArgs` in store/lua/mod.rs, in this order.
local index, snapshot, generation = unpack(KEYS)
local key_base, op, target, limit, new_generation, generation_ttl_ms = unpack(ARGV)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
limit = tonumber(limit)
if op == 'list' then
  local out = {}
  for _, sid in ipairs(redis.call('ZRANGE', index, 0, limit - 1, 'REV')) do
    local f = redis.call('HMGET', key_base .. 's:' .. sid, 'c', 'r', 'cid', 'ip', 'ua', 'rx')
    if f[1] and tonumber(f[6]) > now then
      table.insert(out, sid)
      for i = 1, 6 do
        table.insert(out, f[i] or '')
      end
    else
      redis.call('ZREM', index, sid)
    end
  end
  return out
end
-- Session keys may outlive their sessions by a step; 'rx' is the end.
local function live(sid)
  local rx = tonumber(redis.call('HGET', key_base .. 's:' .. sid, 'rx'))
  return rx ~= nil and rx > now
end
local function finish(sid)
  redis.call('DEL', key_base .. 's:' .. sid, key_base .. 'a:' .. sid)
  redis.call('ZREM', index, sid)
end
local function forget_user_if_empty()
  if redis.call('ZCARD', index) == 0 then
    redis.call('DEL', index, snapshot)
  end
end
if op == 'end' then
  local ended = 0
  if redis.call('ZSCORE', index, target) and live(target) then
    finish(target)
    ended = 1
  end
  forget_user_if_empty()
  return ended
end
-- end_all: a login that read the user before this cannot start a session after it (issue.lua).
redis.call('SET', generation, new_generation, 'PX', generation_ttl_ms)
local ended = 0
for _, sid in ipairs(redis.call('ZRANGE', index, 0, limit - 1)) do
  if live(sid) then
    ended = ended + 1
  end
  finish(sid)
end
forget_user_if_empty()
local more = 0
if redis.call('EXISTS', index) == 1 then
  more = 1
end
return {ended, more}
