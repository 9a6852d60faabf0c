"""The Lua scripts the fleet's shared state runs in Redis (modelmux/addons/fleet.py):
each one step that must not interleave with another gateway's. Times are Redis's own
(gateways' clocks may differ)."""

from __future__ import annotations

from typing import Any

# A max_concurrent slot: taken only while fewer than the limit are held, each slot
# expiring unless its gateway renews it.
TAKE = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return {0, held} end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, held + 1}
"""
# Given back: the others learn how many are held now, and wake their waiters.
GIVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
local event = cjson.decode(ARGV[2])
event['count'] = held
redis.call('PUBLISH', KEYS[2], cjson.encode(event))
return held
"""
# Renewed (or, after Redis came back empty, put back): KEYS are the slots' sets, ARGV
# the lease time and then one member per key.
RENEW = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ms + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""
COUNT = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms)
  counts[i] = redis.call('ZCARD', key)
end
return counts
"""
# A success lifts what it proves over, as Member.lift does: a block set before the
# request was sent, an ordering whenever it was set.
LIFT = """
local lifted = 0
for _, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if value then
    local stored = cjson.decode(value)
    if stored['cooldown']['since'] < tonumber(ARGV[1]) or not stored['firm'] then
      redis.call('DEL', key)
      lifted = lifted + 1
    end
  end
end
return lifted
"""
# A client key's requests over the last ARGV[2] ms (a sliding log): one more is let in,
# and counted, while fewer than ARGV[1] are; else 0 is not returned but the ms until the
# oldest that counts against it leaves the window.
RATE = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms - window)
local count = redis.call('ZCARD', KEYS[1])
local limit = tonumber(ARGV[1])
if count >= limit then
  local oldest = redis.call('ZRANGE', KEYS[1], count - limit, count - limit, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - ms)
end
redis.call('ZADD', KEYS[1], ms, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
# The refresh of a login is given back only by the gateway that holds it.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def queue(pipe: Any, script: Any, keys: list[str], args: list[Any]) -> None:
    """Queue a Lua script on a pipeline. The asyncio Script's call is a coroutine even
    there; the pipeline's own EVALSHA queues at once, and execute() loads the script
    into a Redis that lost it (restarted)."""
    pipe.scripts.add(script)
    pipe.evalsha(script.sha, len(keys), *keys, *args)


