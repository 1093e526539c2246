"""The embedded store's owner consumes the `index` queue in a thread of the API process.

An embedded store (qdrant-edge) opens in one process only; so in embedded mode the API
process, which serves queries from the store, is also the one that writes it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading

from celery import Celery
from celery.signals import setup_logging, task_received

from shared.resources import Resources
from shared.tasks.app import make_celery
from shared.tasks.bindings import register_store_tasks
from shared.tasks.heartbeat import Heartbeat
from shared.tasks.instrument import instrument_tasks
from shared.tasks.leases import LeaseKeeper
from shared.telemetry.logging import ROLE, resolve_format

log = logging.getLogger(__name__)


class IndexConsumer:
    def __init__(self, res: Resources) -> None:
        self._res = res
        self.app: Celery = make_celery(res.settings)
        register_store_tasks(self.app, lambda: res)
        instrument_tasks()
        setup_logging.connect(_logging_is_set_up, weak=False, dispatch_uid="rag-api-logging")
        self.name = f"api-index-{os.getpid()}"
        self._worker = self.app.Worker(
            hostname=f"{self.name}@{socket.gethostname()}",
            queues=["index"],
            pool="solo",
            concurrency=1,
            redirect_stdouts=False,
            without_gossip=True,
            without_mingle=True,
            without_heartbeat=True,
            loglevel="INFO",
            quiet=resolve_format(res.settings.telemetry.log_format) == "json",  # no banner
        )
        self._thread = threading.Thread(target=self._run, name="index-consumer", daemon=True)
        self._heartbeat = Heartbeat(
            res.redis, res.keys, name=self.name, queues=["index"], role="api"
        )
        self._leases = LeaseKeeper(
            res.redis,
            res.keys,
            holder=self.name,
            name="api",
            interval_s=res.settings.jobs.lease_interval_s,
        )

    def _run(self) -> None:
        ROLE.set("index")  # this thread's log lines
        try:
            self._worker.start()
        except Exception:  # noqa: BLE001 - log; /health shows the index queue unconsumed
            log.exception("index consumer stopped")
            self._heartbeat.stop()

    def start(self) -> None:
        self._thread.start()
        self._heartbeat.start()
        self._leases.start()
        task_received.connect(self._on_task, weak=False)

    def _on_task(self, **_: object) -> None:
        self._leases.poke()

    def stop(self) -> None:
        self._heartbeat.stop()
        try:
            self._worker.stop(in_sighandler=False)
        except Exception:  # noqa: BLE001
            log.exception("stopping the index consumer")
        self._thread.join(timeout=10)
        task_received.disconnect(self._on_task)
        self._leases.stop()


def _logging_is_set_up(**_: object) -> None:
    """Answering Celery's setup_logging keeps it off the handlers `rag serve` installed."""
