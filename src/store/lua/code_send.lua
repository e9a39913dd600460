-- Starts a one-time code for one number unless the number's sends are throttled. The new
-- code replaces any live one, with its count of wrong tries: one live code per number.
-- Returns {1, 0} when stored; {0, ms to wait} when throttled (nothing changes).
-- KEYS and ARGV: `CodeSendArgs` in store/lua/mod.rs, in this order.
local sends, code = unpack(KEYS)
local digest, ttl_ms, interval_ms, per_hour, send_id = unpack(ARGV)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local hour = 3600000
local ttl, interval = tonumber(ttl_ms), tonumber(interval_ms)
per_hour = tonumber(per_hour)

-- Throttle: the gap since the last send, and the sends of the last hour.
redis.call('ZREMRANGEBYSCORE', sends, '-inf', now - hour)
local wait = 0
local last = redis.call('ZRANGE', sends, -1, -1, 'WITHSCORES')
if last[2] then
  wait = math.max(wait, tonumber(last[2]) + interval - now)
end
if redis.call('ZCARD', sends) >= per_hour then
  local first = redis.call('ZRANGE', sends, 0, 0, 'WITHSCORES')
  wait = math.max(wait, tonumber(first[2]) + hour - now)
end
if wait > 0 then
  return {0, wait}
end

-- The send counts, and its code replaces the number's live one.
redis.call('ZADD', sends, now, send_id)
redis.call('PEXPIRE', sends, hour)
redis.call('DEL', code)
redis.call('HSET', code, 'd', digest, 'w', 0, 'x', now + ttl)
redis.call('PEXPIRE', code, ttl)
return {1, 0}
