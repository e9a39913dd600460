-- A fixed-window counter: the first hit starts the window.
-- Returns {count, ms left in the window}.
-- KEYS and ARGV: `CountArgs` in store/lua/mod.rs, in this order.
local counter = unpack(KEYS)
local window_ms = unpack(ARGV)
local n = redis.call('INCR', counter)
local ttl = redis.call('PTTL', counter)
if n == 1 or ttl < 0 then
  redis.call('PEXPIRE', counter, window_ms)
  ttl = tonumber(window_ms)
end
return {n, ttl}
