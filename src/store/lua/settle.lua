-- A reserved password check ended without failing: its place goes back, and a correct
-- password starts the count of failures over.
-- KEYS and ARGV: `SettleArgs` in store/lua/mod.rs, in this order.
local failures, checks = unpack(KEYS)
local ticket, correct = unpack(ARGV)
redis.call('ZREM', checks, ticket)
if correct == '1' then
  redis.call('DEL', failures)
end
return 1
