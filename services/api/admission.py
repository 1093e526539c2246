"""Admission control: a bounded number of cold queries run at once in this API process.

A cold /search or /ask (a cache miss) embeds, searches and ranks in the thread pool for tens
to hundreds of milliseconds of CPU. Unbounded, a burst of them (200 at once) shares the cores
so thinly that none finishes in time, and memory grows with every one in flight. The gate lets
RAG_MAX_CONCURRENT_QUERIES run (default: twice the cores); the rest wait in arrival order for
up to RAG_QUERY_QUEUE_TIMEOUT_S, then get a 503 with Retry-After. Cache hits and /health never
pass through it, so they keep answering while the gate is full.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from shared.errors import ServiceUnavailableError
from shared.settings import Settings


class QueryGate:
    def __init__(self, *, limit: int, timeout_s: float) -> None:
        self.limit = limit
        self.timeout_s = timeout_s
        self._slots = asyncio.Semaphore(limit)
        self.running = 0
        self.waiting = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryGate:
        limits = settings.limits
        return cls(limit=limits.query_slots, timeout_s=limits.query_queue_timeout_s)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot while the body runs; ServiceUnavailableError after waiting too long."""
        self.waiting += 1
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceUnavailableError(
                f"busy: {self.limit} queries running (RAG_MAX_CONCURRENT_QUERIES) and none "
                f"finished within RAG_QUERY_QUEUE_TIMEOUT_S={self.timeout_s:g} s; try again "
                "shortly",
                retry_after_s=max(1, math.ceil(self.timeout_s / 2)),
            ) from None
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

    def stats(self) -> dict[str, int]:
        return {"running": self.running, "waiting": self.waiting, "limit": self.limit}
