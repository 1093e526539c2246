"""Jobs that stopped moving: failed as "stalled" rather than left "running" forever.

A job is stalled when it has made no progress for RAG_JOB_STALL_S and none of its work can
be waiting: either no queue holds messages, or no live worker consumes the queues that do.
A job behind a long queue that workers are draining is a backlog, not a stall.
"""

from __future__ import annotations

import logging
import time

from shared.ingest.uploads import release_upload
from shared.resources import Resources
from shared.tasks.app import ALL_QUEUES, queue_depths
from shared.tasks.heartbeat import live_workers

log = logging.getLogger(__name__)


def backlog_queues(res: Resources) -> list[str]:
    """Work that will still be done: queues with messages and a live consumer, and
    unacknowledged messages (running, or coming back after the visibility timeout)."""
    depths = queue_depths(res.redis, res.settings)
    consumed = {q for w in live_workers(res.redis, res.keys) for q in w["queues"]}
    waiting = [q for q in ALL_QUEUES if depths[q] > 0 and q in consumed]
    return waiting + (["unacked"] if depths["unacked"] else [])


def fail_stalled_jobs(res: Resources, *, stall_s: float) -> list[str]:
    now = time.time()
    stale = []
    for job_id in res.jobs.iter_running():
        heartbeat = float(res.jobs.field(job_id, "heartbeat_at") or now)
        if now - heartbeat >= stall_s:
            stale.append((job_id, now - heartbeat))
    if not stale:
        return []
    backlog = backlog_queues(res)
    if backlog:
        return []  # the workers are busy: these jobs wait their turn
    failed = []
    for job_id, idle in stale:
        if res.jobs.is_terminal(job_id):
            continue
        res.jobs.request_cancel(job_id)  # late deliveries of its tasks drop out
        res.jobs.finish(
            job_id,
            state="failed",
            message=f"stalled: no progress for {idle:.0f} s and none of its work is queued "
            f"(RAG_JOB_STALL_S={stall_s:g}); retry it with POST /ingest/retry/{job_id}",
        )
        release_upload(res.jobs.raw(job_id), [], state="failed")  # kept for a retry
        log.warning("job %s stalled after %.0f s idle", job_id, idle)
        failed.append(job_id)
    return failed
