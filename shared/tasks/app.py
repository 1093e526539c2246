"""The Celery app both sides share: broker settings, queues and routes, and task dispatch.

The API uses it as a client (it sends tasks by name); workers register the tasks on it.
"""

from __future__ import annotations

import redis
from celery import Celery
from kombu import Exchange, Queue
from pydantic import BaseModel

from shared.ingest.payloads import QUEUES
from shared.settings import Settings

ALL_QUEUES = ("ingest", "embed", "index")


def make_celery(settings: Settings) -> Celery:
    url = settings.redis_url
    app = Celery("rag", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_ignore_result=True,  # jobs are tracked through records in Redis, not results
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        # A pool process loads the model in worker_process_init before it reports up; on a
        # busy machine that takes far longer than Celery's default 4 s, after which the
        # parent kills it and forks another, forever.
        worker_proc_alive_timeout=180,
        worker_send_task_events=False,
        # On SIGTERM a worker finishes its running task for up to this long before the
        # broker gets it back (below compose's 90 s and Kubernetes' 120 s grace periods).
        worker_soft_shutdown_timeout=60,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # A dead worker's unacknowledged task returns after this long (kombu's default
            # is an hour); a live worker renews the tasks it holds (shared/tasks/leases.py),
            # so a task may run longer than this without being delivered twice.
            "visibility_timeout": settings.jobs.redelivery_s,
            # kombu sweeps for expired unacknowledged messages every interval x throttle
            # seconds (100 s by default): sweep often enough for the redelivery delay.
            "unacked_restore_interval": settings.jobs.restore_interval_s,
            "unacked_restore_throttle": 1,
            # Workers take from their queues in the order given (index, embed, ingest): finish
            # what is parsed before parsing more, so staged chunks do not pile up in Redis.
            "queue_order_strategy": "priority",
            "global_keyprefix": f"{settings.key_prefix}:celery:",
        },
        result_backend_transport_options={"global_keyprefix": f"{settings.key_prefix}:celery:"},
        task_queues=[Queue(name, Exchange(name), routing_key=name) for name in ALL_QUEUES],
        task_default_queue="ingest",
        task_routes={name: {"queue": queue} for name, queue in QUEUES.items()},
    )
    return app


class CeleryDispatcher:
    """Sends stage messages by task name, so no process needs another's task code."""

    def __init__(self, app: Celery) -> None:
        self._app = app

    def send(self, task: str, msg: BaseModel) -> None:
        self._app.send_task(task, kwargs={"msg": msg.model_dump()}, queue=QUEUES[task])


def queue_keys(settings: Settings) -> dict[str, str]:
    """The Redis key of each queue's list, and of `unacked` (kombu's hash)."""
    prefix = f"{settings.key_prefix}:celery:"
    return {name: f"{prefix}{name}" for name in (*ALL_QUEUES, "unacked")}


def queue_depths(client: redis.Redis, settings: Settings) -> dict[str, int]:
    """Messages waiting in each queue, and `unacked`: delivered, not yet acknowledged
    (running now, or held by a dead worker until the visibility timeout brings them back)."""
    names = queue_keys(settings)
    pipe = client.pipeline(transaction=False)
    for q in ALL_QUEUES:
        pipe.llen(names[q])
    pipe.hlen(names["unacked"])
    counts = [int(n) for n in pipe.execute()]
    return dict(zip((*ALL_QUEUES, "unacked"), counts, strict=True))
