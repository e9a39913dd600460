-- The lease every replica on this Redis must run: set by the first tracking connection,
-- refreshed by each one that runs the same.
-- KEYS: the lease key
-- ARGV: this replica's lease ms, the key's TTL ms
-- Returns the lease stored.
local v = redis.call('GET', KEYS[1])
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return tonumber(ARGV[1])
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return tonumber(v)
