-- A fixed-window counter: the first hit starts the window.
-- KEYS: counter
-- ARGV: window ms
-- Returns {count, ms left in the window}.
local n = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return {n, ttl}
