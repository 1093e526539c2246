"""Admission control: a bounded number of cold queries run at once in this API process.

A cold /search, /ask or /chat turn (a cache miss) embeds, searches, ranks (and may wait on an
LLM) in a worker thread. Unbounded, a burst of them (200 at once) shares the cores so thinly
that none finishes in time, and memory grows with every one in flight. The gate lets
RAG_MAX_CONCURRENT_QUERIES run (default: twice the cores); the rest wait in arrival order for
up to RAG_QUERY_QUEUE_TIMEOUT_S, then get a 503 with Retry-After. Cache hits and /health never
pass through it, so they keep answering while the gate is full. A streamed answer (/ask or
/chat with "stream": true) takes its slot before the stream opens (so the 503 is a real
status) and gives it back when its worker thread ends.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from services.api.streaming import Answering, sse_answer
from shared.errors import ServiceUnavailableError
from shared.search.answerer import Emit
from shared.settings import Settings


class Slot:
    """One held place in the gate. `release()` is idempotent; from another thread use
    `release_soon()`, which hands it to the event loop."""

    def __init__(self, gate: QueryGate) -> None:
        self._gate = gate
        self._loop = asyncio.get_running_loop()
        self._held = True
        self.started = False  # a streamed answer's worker thread has begun

    def release(self) -> None:
        if self._held:
            self._held = False
            self._gate._release()

    def release_soon(self) -> None:
        try:
            self._loop.call_soon_threadsafe(self.release)
        except RuntimeError:  # the loop is closed: the process is stopping
            pass


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

    async def acquire(self) -> Slot:
        """A slot, waiting up to the queue timeout; ServiceUnavailableError past it."""
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
        return Slot(self)

    def _release(self) -> None:
        self.running -= 1
        self._slots.release()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot while the body runs."""
        held = await self.acquire()
        try:
            yield
        finally:
            held.release()

    def stats(self) -> dict[str, int]:
        return {"running": self.running, "waiting": self.waiting, "limit": self.limit}


def gated(slot: Slot, answering: Answering) -> Answering:
    """A streamed answer that holds `slot` until its worker thread is done."""

    def run(emit: Emit, cancel: threading.Event) -> dict[str, Any]:
        slot.started = True
        try:
            return answering(emit, cancel)
        finally:
            slot.release_soon()

    return run


async def answer_in_turn(gate: QueryGate, answering: Answering, *, stream: bool) -> Any:
    """Run `answering` within the gate: as server-sent events, the slot held until its worker
    thread ends; else in the thread pool, returning the answer object."""
    if stream:
        slot = await gate.acquire()
        response = sse_answer(gated(slot, answering))
        response.background = release_if_never_started(slot)
        return response
    async with gate.slot():
        return await run_in_threadpool(answering, _no_events, threading.Event())


def _no_events(_name: str, _data: dict[str, Any]) -> None:
    pass


def release_if_never_started(slot: Slot) -> BackgroundTask:
    """The response's background task: a stream whose client left before its worker thread
    began gives the slot back here (otherwise the thread does)."""

    async def release() -> None:
        if not slot.started:
            slot.release()

    return BackgroundTask(release)
