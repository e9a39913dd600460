-- The lease every replica on this Redis must run: set by the first tracking connection,
-- refreshed by each one that runs the same.
-- Returns the lease stored.
-- KEYS and ARGV: `LeaseArgs` in store/lua/mod.rs, in this order.
local lease = unpack(KEYS)
local lease_ms, ttl_ms = unpack(ARGV)
local v = redis.call('GET', lease)
if not v then
  redis.call('SET', lease, lease_ms, 'PX', ttl_ms)
  return tonumber(lease_ms)
end
if v == lease_ms then
  redis.call('PEXPIRE', lease, ttl_ms)
end
return tonumber(v)
