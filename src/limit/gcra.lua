-- One request against a GCRA bucket, decided and counted in one step, the
-- same algorithm as governor's (the local store): a bucket holds its
-- theoretical arrival time (TAT) in microseconds of Redis's own clock, so
-- that replicas whose clocks differ still agree.
--
-- KEYS[1]  the bucket
-- KEYS[2]  (optional) set while the bucket refuses: an address that spent
--          its budget of denied requests
-- ARGV[1]  the emission interval (per / requests), microseconds
-- ARGV[2]  the tolerance, interval * (burst - 1), microseconds
--
-- Returns 0 when the request conforms (and is counted), else the
-- microseconds until one would. Keys expire once they hold nothing that an
-- absent key does not.
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
local earliest = tat - tolerance
if now < earliest then
  local wait = earliest - now
  if KEYS[2] then
    redis.call('SET', KEYS[2], '1', 'PX', math.max(1, math.ceil(wait / 1000)))
  end
  return wait
end
local next = math.max(tat, now) + interval
redis.call('SET', KEYS[1], string.format('%d', next), 'PX', math.max(1, math.ceil((next - now) / 1000)))
return 0
