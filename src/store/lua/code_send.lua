-- Starts a one-time code for one number unless the number's sends are throttled. The new
-- code replaces any live one, with its count of wrong tries: one live code per number.
-- KEYS: sends (sorted set: send id -> ms, the last hour), code (hash: d, w, x)
-- ARGV: see `SendArgs` in store/redis/codes.rs: digest, code TTL ms, least ms between sends,
--       sends per hour, send id
-- Returns {1, 0} when stored; {0, ms to wait} when throttled (nothing changes).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hour = 3600000
local ttl, interval, per_hour = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])

-- Throttle: the gap since the last send, and the sends of the last hour.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - hour)
local wait = 0
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if last[2] then
  wait = math.max(wait, tonumber(last[2]) + interval - now)
end
if redis.call('ZCARD', KEYS[1]) >= per_hour then
  local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  wait = math.max(wait, tonumber(first[2]) + hour - now)
end
if wait > 0 then
  return {0, wait}
end

-- The send counts, and its code replaces the number's live one.
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], hour)
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], 'd', ARGV[1], 'w', 0, 'x', now + ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return {1, 0}
