"""Leases on the tasks a worker process holds: a dead worker's tasks come back within about
RAG_JOB_REDELIVERY_S, and a live worker's long task is never delivered twice.

kombu's Redis transport keeps each delivered, unacknowledged message in `unacked`, with its
delivery time in `unacked_index`; a message older than the visibility timeout
(RAG_JOB_REDELIVERY_S) goes back on its queue. A `LeaseKeeper` thread in every process that
consumes tasks moves that time forward for each task the process holds (running, reserved or
waiting for a retry countdown) every quarter of the timeout, and soon after a task arrives.
So the timeout can be short (a minute): it counts from the worker's last sign of life, not
from the task's start, and a two-minute parse stays with its worker. The lease record (holder, last renewal, tags and their
jobs) in one Redis hash lets a job's record say which worker's tasks it waits for.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable

import redis

from shared.keys import Keys

log = logging.getLogger(__name__)

Held = Callable[[], dict[str, str]]
POKE_DELAY_S = 0.2


def held_by_this_process() -> dict[str, str]:
    """delivery tag -> job id of every task Celery's consumer in this process holds."""
    from celery.worker import state

    for _ in range(5):
        try:
            requests = tuple(state.requests.values())
            break
        except RuntimeError:  # changed size while copied: the consumer thread moved on
            continue
    else:
        return {}
    held: dict[str, str] = {}
    for request in requests:
        tag = getattr(getattr(request, "message", None), "delivery_tag", None)
        if tag is None:
            continue
        try:
            job_id = str(request.kwargs["msg"]["job_id"])
        except (KeyError, TypeError, AttributeError):
            job_id = ""
        held[str(tag)] = job_id
    return held


class LeaseKeeper:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        holder: str,
        name: str,
        interval_s: float,
        held: Held = held_by_this_process,
    ) -> None:
        self._r = client
        self._k = keys
        self.holder = holder
        self.name = name
        self.interval_s = interval_s
        self._held = held
        self._stop = threading.Event()
        self._poked = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"leases-{name}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def renew(self) -> int:
        """Mark every task held here as delivered now; returns how many."""
        held = self._held()
        now = time.time()
        pipe = self._r.pipeline(transaction=False)
        index = self._k.celery("unacked_index")
        for tag in held:
            pipe.zadd(index, {tag: now}, xx=True)  # xx: an acknowledged task stays gone
        lease = {"name": self.name, "at": now, "interval": self.interval_s, "tags": held}
        pipe.hset(self._k.worker_leases(), self.holder, json.dumps(lease))
        pipe.execute()
        return len(held)

    def poke(self) -> None:
        """A task just arrived: record it soon, so the lease names its holder at once."""
        self._poked.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.renew()
            except redis.RedisError as exc:  # Redis is down: /health says so; keep trying
                log.debug("lease renewal failed: %s", exc)
            if self._poked.wait(self.interval_s):
                self._poked.clear()
                # The consumer files the request a moment after announcing it.
                self._stop.wait(POKE_DELAY_S)

    def stop(self) -> None:
        self._stop.set()
        self._poked.set()
        self._thread.join(timeout=5)
        try:
            self._r.hdel(self._k.worker_leases(), self.holder)
        except redis.RedisError:
            pass
