-- Redeems a one-time code, at most once: the right HMAC ends the code and answers 1; a wrong
-- one counts a try, and the try that reaches the limit ends the code too, so it is dead even
-- for the right digits. One script, so two logins presenting one code cannot both see it.
-- KEYS: code (hash: d HMAC hex, w wrong tries, x expiry ms)
-- ARGV: see `RedeemArgs` in store/redis/codes.rs: presented HMAC hex, wrong tries allowed
-- Returns 1 if the code matched (and is now ended), 0 otherwise.
local stored = redis.call('HMGET', KEYS[1], 'd', 'x')
if not stored[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(stored[2] or '0') <= now then
  redis.call('DEL', KEYS[1])
  return 0
end

-- Every byte is compared whatever the first difference: the time taken tells nothing.
local a, b = stored[1], ARGV[1]
local diff = (#a == #b) and 0 or 1
for i = 1, #a do
  diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i) or 0))
end
if diff == 0 then
  redis.call('DEL', KEYS[1])
  return 1
end

if redis.call('HINCRBY', KEYS[1], 'w', 1) >= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
end
return 0
