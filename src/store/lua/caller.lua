-- Prelude of the caller's-own-sessions script: the caller's access token must be live.
-- KEYS[4]: caller's access key; ARGV[7]: caller's access digest.
if redis.call('GET', KEYS[4]) ~= ARGV[7] then
  return false
end
