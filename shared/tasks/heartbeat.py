"""Liveness of worker processes, written to Redis so /health can list who is alive."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from typing import Any

import redis

from shared.keys import Keys

INTERVAL_S = 5.0
TTL_S = 20


class Heartbeat:
    def __init__(
        self, client: redis.Redis, keys: Keys, *, name: str, queues: list[str], role: str = "worker"
    ) -> None:
        self._r = client
        self._name = name
        self._key = keys.worker_heartbeat(name)
        self._registry = keys.worker_registry()
        self._info = {"name": name, "queues": queues, "pid": os.getpid(),
                      "host": socket.gethostname(), "role": role}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{name}", daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                pipe = self._r.pipeline(transaction=False)
                pipe.set(self._key, json.dumps({**self._info, "at": time.time()}), ex=TTL_S)
                pipe.sadd(self._registry, self._name)
                pipe.execute()
            except redis.RedisError:
                pass  # Redis is down: /health says so; keep trying
            self._stop.wait(INTERVAL_S)

    def stop(self) -> None:
        self._stop.set()
        try:
            pipe = self._r.pipeline(transaction=False)
            pipe.delete(self._key)
            pipe.srem(self._registry, self._name)
            pipe.execute()
        except redis.RedisError:
            pass


def live_workers(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    """Every worker whose heartbeat has not expired, by name. Two round trips, whatever the
    size of the database (a SCAN would walk every cache key)."""
    members: set[bytes] = client.smembers(keys.worker_registry())  # type: ignore[assignment]
    names = sorted(n.decode() for n in members)
    values: list[Any] = client.mget([keys.worker_heartbeat(n) for n in names]) if names else []
    workers, gone = parse_heartbeats(names, values)
    if gone:
        client.srem(keys.worker_registry(), *gone)
    return workers


def parse_heartbeats(
    names: list[str], values: list[Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """(live workers by name, names whose heartbeat expired) from the heartbeat values of
    `names`, in order."""
    workers = [json.loads(v) for v in values if v]
    gone = [n for n, v in zip(names, values, strict=True) if not v]
    return sorted(workers, key=lambda w: w["name"]), gone
