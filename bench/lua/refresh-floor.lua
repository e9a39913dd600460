-- A bound, not a refresh: the five commands every refresh needs (read the session and the
-- user, the time, write the session and the access key) and no checks. Same KEYS/ARGV and
-- reply shape as src/store/lua/refresh.lua, so bench/script-cost and the server can run it.
local rh = redis.call('HGET', KEYS[1], 'rh')
local user = redis.call('GET', KEYS[4])
local t = redis.call('TIME')
redis.call('HSET', KEYS[1], 'rh', ARGV[4], 'r', t[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return {1, user, ARGV[8], 'read', 3600000, 1209600000}
