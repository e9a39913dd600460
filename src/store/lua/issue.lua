-- Starts a session: session hash, access key and the user's index, in one step.
-- KEYS: session, access, user index
-- ARGV: access digest, access ttl ms, refresh digest, refresh ttl ms, session id,
--       user uuid, user json, client id, scope, ip, user agent
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rttl = tonumber(ARGV[4])
local attl = math.min(tonumber(ARGV[2]), rttl)
local rexp = now + rttl
redis.call('HSET', KEYS[1], 'rh', ARGV[3], 'rx', rexp, 'uid', ARGV[6], 'u', ARGV[7],
  'cid', ARGV[8], 'sc', ARGV[9], 'c', now, 'r', now, 'g', 0, 'ip', ARGV[10], 'ua', ARGV[11])
redis.call('PEXPIREAT', KEYS[1], rexp)
redis.call('SET', KEYS[2], ARGV[1], 'PX', attl)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], rexp, ARGV[5])
local last = redis.call('ZRANGE', KEYS[3], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[3], last[2])
return {attl, rttl}
