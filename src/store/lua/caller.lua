-- Prelude of the caller's-own-sessions script: the caller's access token must be live.
-- KEYS[3]: caller's access key; ARGV[4]: caller's access digest.
if redis.call('GET', KEYS[3]) ~= ARGV[4] then
  return false
end
