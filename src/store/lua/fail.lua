-- Counts a wrong password; at the limit the account locks and the count starts over.
-- KEYS: failure counter, lock (one hash tag)
-- ARGV: max attempts, period ms, cool-down ms
-- Returns 1 if this failure locked the account.
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
if n < tonumber(ARGV[1]) then
  return 0
end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
redis.call('DEL', KEYS[1])
return 1
