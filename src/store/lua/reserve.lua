-- Reserves one password check of an account's budget before bcrypt runs. Failures in the
-- period plus checks in flight never exceed the budget, so parallel attempts cannot check
-- more wrong passwords than it allows.
-- KEYS: failure counter, lock, checks in flight (sorted set: ticket -> hold until, ms)
-- ARGV: max attempts, ticket, hold ms
-- Returns 1 if granted, 0 if the account is locked, -1 if the budget is taken by checks in
-- flight (retry when they end).
if redis.call('EXISTS', KEYS[2]) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local max = tonumber(ARGV[1])
local failed = tonumber(redis.call('GET', KEYS[1]) or '0')
if failed >= max then
  return 0
end
if failed + redis.call('ZCARD', KEYS[3]) >= max then
  return -1
end
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return 1
