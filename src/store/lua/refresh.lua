-- Redeems a refresh token at most once: checks its digest, replaces both tokens of the
-- session (the old access key is overwritten, so it ends) and moves the expiry on.
-- KEYS: session, access, user index
-- ARGV: presented refresh digest, new access digest, access ttl ms, new refresh digest,
--       refresh ttl ms, session id, requested scope ('' keeps the session's)
-- Returns {0} invalid, {2} scope too wide, or {1, user json, client id, scope, access ttl, refresh ttl}.
local cur = redis.call('HMGET', KEYS[1], 'rh', 'u', 'cid', 'sc', 'g')
if not cur[1] or cur[1] ~= ARGV[1] then
  return {0}
end
local scope = cur[4]
if ARGV[7] ~= '' then
  local have = ' ' .. scope .. ' '
  for s in string.gmatch(ARGV[7], '%S+') do
    if not string.find(have, ' ' .. s .. ' ', 1, true) then
      return {2}
    end
  end
  scope = ARGV[7]
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rttl = tonumber(ARGV[5])
local attl = math.min(tonumber(ARGV[3]), rttl)
local rexp = now + rttl
redis.call('HSET', KEYS[1], 'rh', ARGV[4], 'rx', rexp, 'r', now, 'g', tonumber(cur[5]) + 1, 'sc', scope)
redis.call('PEXPIREAT', KEYS[1], rexp)
redis.call('SET', KEYS[2], ARGV[2], 'PX', attl)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], rexp, ARGV[6])
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[3], last[2])
return {1, cur[2], cur[3], scope, attl, rttl}
