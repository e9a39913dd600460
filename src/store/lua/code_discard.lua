-- Ends a code whose delivery failed, unless a later send has already replaced it.
-- KEYS: code (hash: d HMAC hex, w, x)
-- ARGV: the HMAC hex of the code that was not delivered
-- Returns 1 if the code was ended.
if redis.call('HGET', KEYS[1], 'd') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
