"""A token bucket per API key in Redis: one Lua script, one round trip per request.

The bucket holds up to `burst` tokens and refills at `per_s` a second; a request takes one.
Time is the Redis server's, so every API replica fills the same bucket at the same rate.
"""

from __future__ import annotations

import redis.asyncio as aioredis

from shared.direct_script import DirectScript
from shared.keys import Keys

# KEYS[1] the bucket; ARGV rate per second, burst. Returns {allowed, seconds to wait}.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


class RateLimiter:
    """`await limiter.take(key_id)`: 0.0 when the request may go, else seconds until it may."""

    def __init__(self, client: aioredis.Redis, keys: Keys, *, per_s: float, burst: int) -> None:
        if per_s <= 0 or burst < 1:
            raise ValueError("a rate limiter needs per_s > 0 and burst >= 1")
        self.per_s = per_s
        self.burst = burst
        self._keys = keys
        self._script = DirectScript(client, TOKEN_BUCKET)

    async def take(self, key_id: str) -> float:
        allowed, wait = await self._script(
            keys=[self._keys.rate_bucket(key_id)], args=[self.per_s, self.burst]
        )
        return 0.0 if int(allowed) else float(wait)

    async def aclose(self) -> None:
        await self._script.aclose()
