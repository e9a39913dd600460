-- A reserved password check failed: it counts as a failure. The failure that spends the
-- budget locks the account and starts the count over.
-- KEYS: failure counter, lock, checks in flight
-- ARGV: ticket, max attempts, period ms, cool-down ms
-- Returns 1 if this failure locked the account.
redis.call('ZREM', KEYS[3], ARGV[1])
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
if n < tonumber(ARGV[2]) then
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[4])
redis.call('DEL', KEYS[1])
return 1
