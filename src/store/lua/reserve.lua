-- Reserves one password check of an account's budget before bcrypt runs. Failures in the
-- period plus checks in flight never exceed the budget, so parallel attempts cannot check
-- more wrong passwords than it allows.
-- Returns 1 if granted, 0 if the account is locked, -1 if the budget is taken by checks in
-- flight (retry when they end).
-- KEYS and ARGV: `ReserveArgs` in store/lua/mod.rs, in this order.
local failures, lock, checks = unpack(KEYS)
local max_attempts, ticket, hold_ms = unpack(ARGV)
if redis.call('EXISTS', lock) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', checks, '-inf', now)
local max = tonumber(max_attempts)
local failed = tonumber(redis.call('GET', failures) or '0')
if failed >= max then
  return 0
end
if failed + redis.call('ZCARD', checks) >= max then
  return -1
end
redis.call('ZADD', checks, now + tonumber(hold_ms), ticket)
redis.call('PEXPIRE', checks, hold_ms)
return 1
