-- Redeems a one-time code, at most once: the right HMAC ends the code and answers 1; a wrong
-- one counts a try, and the try that reaches the limit ends the code too, so it is dead even
-- for the right digits. One script, so two logins presenting one code cannot both see it.
-- Returns 1 if the code matched (and is now ended), 0 otherwise.
-- KEYS and ARGV: `CodeRedeemArgs` in store/lua/mod.rs, in this order.
local code = unpack(KEYS)
local presented, max_wrong = unpack(ARGV)
local stored = redis.call('HMGET', code, 'd', 'x')
if not stored[1] then
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(stored[2] or '0') <= now then
  redis.call('DEL', code)
  return 0
end

-- Every byte is compared whatever the first difference: the time taken tells nothing.
local a, b = stored[1], presented
local diff = (#a == #b) and 0 or 1
for i = 1, #a do
  diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i) or 0))
end
if diff == 0 then
  redis.call('DEL', code)
  return 1
end

if redis.call('HINCRBY', code, 'w', 1) >= tonumber(max_wrong) then
  redis.call('DEL', code)
end
return 0
