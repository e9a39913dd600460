-- A reserved password check failed: it counts as a failure. The failure that spends the
-- budget locks the account and starts the count over.
-- Returns 1 if this failure locked the account.
-- KEYS and ARGV: `FailArgs` in store/lua/mod.rs, in this order.
local failures, lock, checks = unpack(KEYS)
local ticket, max_attempts, period_ms, cool_down_ms = unpack(ARGV)
redis.call('ZREM', checks, ticket)
local n = redis.call('INCR', failures)
if n == 1 or redis.call('PTTL', failures) < 0 then
  redis.call('PEXPIRE', failures, period_ms)
end
if n < tonumber(max_attempts) then
  return 0
end
redis.call('SET', lock, '1', 'PX', cool_down_ms)
redis.call('DEL', failures)
return 1
