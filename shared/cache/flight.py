"""Single flight across processes: of N identical cold requests, one computes, the rest wait."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import redis

T = TypeVar("T")

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def single_flight(
    client: redis.Redis,
    *,
    flight_key: str,
    lookup: Callable[[], T | None],
    compute: Callable[[], T],
    timeout_s: float,
) -> tuple[T, bool]:
    """(value, computed_here). `compute` must store its value where `lookup` finds it."""
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    delay = 0.002
    while True:
        if client.set(flight_key, token, nx=True, px=int(timeout_s * 1000)):
            try:
                found = lookup()  # it may have landed between our miss and the claim
                if found is not None:
                    return found, False
                return compute(), True
            finally:
                client.eval(_RELEASE, 1, flight_key, token)
        found = lookup()
        if found is not None:
            return found, False
        if time.monotonic() > deadline:
            return compute(), True  # the leader is stuck or gone: do it ourselves
        time.sleep(delay)
        delay = min(delay * 1.5, 0.05)
