"""Celery worker: `rag worker` (or `celery -A services.worker.app worker`).

Consumes `ingest` and `embed`; with a Qdrant server (RAG_QDRANT_URL) also `index`. The model
loads in each pool process after the fork (`worker_process_init`), never in the parent.
"""

from __future__ import annotations

import logging
import os

from celery import Celery
from celery.signals import (
    setup_logging,
    task_received,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from shared.keys import Keys
from shared.resources import Resources, connect_redis
from shared.settings import Settings, warn_unknown_settings
from shared.tasks.app import make_celery
from shared.tasks.bindings import register_ingest_tasks, register_store_tasks
from shared.tasks.heartbeat import Heartbeat
from shared.tasks.instrument import instrument_tasks
from shared.tasks.leases import LeaseKeeper
from shared.telemetry import metrics
from shared.telemetry.logging import configure_logging, resolve_format
from shared.vectors.embedding import threads_for

log = logging.getLogger(__name__)


def worker_queues(settings: Settings) -> list[str]:
    """In priority order (see `queue_order_strategy`): commit, then embed, then parse."""
    return ["embed", "ingest"] if settings.embedded_store else ["index", "embed", "ingest"]


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or Settings()
    warn_unknown_settings()
    app = make_celery(settings)
    state: dict[str, object] = {}

    def resources() -> Resources:
        if "resources" not in state:  # a solo pool never fires worker_process_init
            _init_process()
        return state["resources"]  # type: ignore[return-value]

    @worker_process_init.connect(weak=False)
    def _init_process(**_: object) -> None:
        threads = threads_for(settings.local_workers, settings.embedding.threads)
        res = Resources(settings, torch_threads=threads)
        res.embedder.encode(["warm up"])  # load the model now, not in the first task
        metrics.configure(res.redis, res.keys)
        name = settings.worker_name or f"worker-{os.getpid()}"
        state["heartbeat"] = Heartbeat(
            res.redis, res.keys, name=f"{name}:{os.getpid()}", queues=worker_queues(settings)
        ).start()
        state["resources"] = res
        log.info("worker process %s ready (torch threads %d)", os.getpid(), threads)

    @worker_process_shutdown.connect(weak=False)
    def _shutdown_process(**_: object) -> None:
        metrics.flush()
        hb = state.get("heartbeat")
        if isinstance(hb, Heartbeat):
            hb.stop()
        res = state.get("resources")
        if isinstance(res, Resources):
            res.close()

    instrument_tasks()

    @setup_logging.connect(weak=False)
    def _our_logging(**_: object) -> None:  # answering this stops Celery configuring its own
        configure_logging("worker", settings.telemetry.log_format)

    @worker_ready.connect(weak=False)
    def _start_leases(**_: object) -> None:
        # In the main process, whose consumer holds the delivered tasks (shared/tasks/leases.py).
        client = connect_redis(settings.redis_url)
        name = settings.worker_name or f"worker-{os.getpid()}"
        state["leases"] = LeaseKeeper(
            client,
            Keys(settings.key_prefix),
            holder=f"{name}:{os.getpid()}",
            name=name,
            interval_s=settings.jobs.lease_interval_s,
        ).start()

    @task_received.connect(weak=False)
    def _lease_new_task(**_: object) -> None:
        leases = state.get("leases")
        if isinstance(leases, LeaseKeeper):
            leases.poke()

    @worker_shutdown.connect(weak=False)
    def _stop_leases(**_: object) -> None:
        leases = state.get("leases")
        if isinstance(leases, LeaseKeeper):
            leases.stop()

    register_ingest_tasks(app, resources, parse_time_limit_s=settings.limits.parse_timeout_s + 60)
    if not settings.embedded_store:
        register_store_tasks(app, resources)
    return app


def run_worker(*, settings: Settings, name: str, concurrency: int = 1, loglevel: str = "INFO") -> None:
    app = create_app(settings)
    quiet = ["--quiet"] if resolve_format(settings.telemetry.log_format) == "json" else []
    app.worker_main(
        [
            *quiet,  # no banner among JSON lines
            "worker",
            f"--hostname={name}@%h",
            f"--queues={','.join(worker_queues(settings))}",
            f"--concurrency={concurrency}",
            "--pool=prefork",
            f"--loglevel={loglevel}",
            "--without-gossip",
            "--without-mingle",
        ]
    )


