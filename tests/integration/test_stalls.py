"""The stall policy on a real Redis: lost work fails the job, a backlog does not."""

from __future__ import annotations

import time
import uuid

import pytest

from shared.resources import Resources
from shared.settings import RedisSettings, Settings
from shared.tasks.heartbeat import Heartbeat, live_workers
from shared.tasks.stalls import fail_stalled_jobs


@pytest.fixture()
def res(redis_url: str) -> Resources:
    settings = Settings(key_prefix=f"stall{uuid.uuid4().hex[:6]}", redis=RedisSettings(url=redis_url))
    resources = Resources(settings)
    yield resources
    resources.close()


def _stale_job(res: Resources, idle_s: float = 100) -> str:
    job_id = res.jobs.create(corpus="c", path="p", abs_path="/p", root="/")
    res.redis.hset(res.keys.job(job_id), "heartbeat_at", time.time() - idle_s)
    return job_id


def _queue(res: Resources, name: str) -> str:
    return f"{res.settings.key_prefix}:celery:{name}"


def test_job_behind_a_queue_that_a_live_worker_drains_is_not_stalled(res: Resources) -> None:
    job_id = _stale_job(res)
    res.redis.lpush(_queue(res, "embed"), "a message of another job")
    hb = Heartbeat(res.redis, res.keys, name="w", queues=["ingest", "embed"]).start()
    try:
        deadline = time.monotonic() + 10
        while not any(w["name"] == "w" for w in live_workers(res.redis, res.keys)):
            assert time.monotonic() < deadline, "the heartbeat never showed up"
            time.sleep(0.05)
        assert fail_stalled_jobs(res, stall_s=60) == []
        assert res.jobs.record(job_id)["state"] == "queued"
    finally:
        hb.stop()


def test_job_whose_queue_has_no_consumer_is_stalled(res: Resources) -> None:
    job_id = _stale_job(res)
    res.redis.lpush(_queue(res, "index"), "nobody consumes index")
    assert fail_stalled_jobs(res, stall_s=60) == [job_id]
    record = res.jobs.record(job_id)
    assert record["state"] == "failed"
    assert record["message"].startswith("stalled: no progress for 100 s")
    assert res.jobs.cancelled(job_id), "late deliveries of its tasks must drop out"


def test_unacknowledged_work_waits_for_redelivery(res: Resources) -> None:
    _stale_job(res)
    res.redis.hset(_queue(res, "unacked"), "tag", "a task held by a dead worker")
    assert fail_stalled_jobs(res, stall_s=60) == []


def test_recent_progress_is_never_stalled(res: Resources) -> None:
    job_id = _stale_job(res, idle_s=5)
    assert fail_stalled_jobs(res, stall_s=60) == []
    assert res.jobs.record(job_id)["state"] == "queued"
