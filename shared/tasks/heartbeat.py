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
        self._key = keys.worker_heartbeat(name)
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
                self._r.set(self._key, json.dumps({**self._info, "at": time.time()}), ex=TTL_S)
            except redis.RedisError:
                pass  # Redis is down: /health says so; keep trying
            self._stop.wait(INTERVAL_S)

    def stop(self) -> None:
        self._stop.set()
        try:
            self._r.delete(self._key)
        except redis.RedisError:
            pass


def live_workers(client: redis.Redis, keys: Keys) -> list[dict[str, Any]]:
    workers = []
    for key in client.scan_iter(match=keys.worker_pattern(), count=200):
        raw = client.get(key)
        if raw:
            workers.append(json.loads(raw))
    return sorted(workers, key=lambda w: w["name"])
