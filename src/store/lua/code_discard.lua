-- Ends a code whose delivery failed, unless a later send has already replaced it.
-- Returns 1 if the code was ended.
-- KEYS and ARGV: `CodeDiscardArgs` in store/lua/mod.rs, in this order.
local code = unpack(KEYS)
local digest = unpack(ARGV)
if redis.call('HGET', code, 'd') == digest then
  redis.call('DEL', code)
  return 1
end
return 0
