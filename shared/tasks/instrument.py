"""Task metrics and failure lines from Celery's signals, in every process that runs tasks
(worker pool processes, and the API's index consumer in embedded mode)."""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.signals import task_failure, task_postrun, task_prerun

from shared.telemetry import metrics
from shared.telemetry.logging import bind_job

log = logging.getLogger(__name__)

_started: dict[str, float] = {}  # task id -> when it started (monotonic)


def instrument_tasks() -> None:
    """Count and time every task this process runs; flush the counts after each."""
    task_prerun.connect(_prerun, weak=False, dispatch_uid="rag-task-prerun")
    task_postrun.connect(_postrun, weak=False, dispatch_uid="rag-task-postrun")
    task_failure.connect(_failure, weak=False, dispatch_uid="rag-task-failure")


def _prerun(task_id: str | None = None, **_: Any) -> None:
    if task_id:
        _started[task_id] = time.monotonic()


def _postrun(
    task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any
) -> None:
    start = _started.pop(task_id or "", None)
    metrics.record_task(
        task=getattr(task, "name", "unknown"),
        outcome=(state or "unknown").lower(),
        duration_s=None if start is None else time.monotonic() - start,
    )
    metrics.flush()


def _failure(
    sender: Any = None, exception: BaseException | None = None, kwargs: Any = None, **_: Any
) -> None:
    msg = (kwargs or {}).get("msg") if isinstance(kwargs, dict) else None
    job_id = msg.get("job_id") if isinstance(msg, dict) else None
    name = getattr(sender, "name", "task")
    if job_id:
        with bind_job(str(job_id)):
            log.error("%s failed: %s: %s", name, type(exception).__name__, exception)
    else:
        log.error("%s failed: %s: %s", name, type(exception).__name__, exception)
