-- A reserved password check ended without failing: its place goes back, and a correct
-- password starts the count of failures over.
-- KEYS: failure counter, checks in flight
-- ARGV: ticket, '1' if the password was correct
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[1])
end
return 1
