-- Writes one user record in a single step, so no reader sees half a user.
-- KEYS: the user hash
-- ARGV: mode ('create' | 'replace' | 'update'), then field, value pairs
-- Returns 1 if written; 0 if 'create' found a record or 'update' found none.
local exists = redis.call('EXISTS', KEYS[1]) == 1
local mode = ARGV[1]
if (mode == 'create' and exists) or (mode == 'update' and not exists) then
  return 0
end
if mode == 'replace' then
  redis.call('DEL', KEYS[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
