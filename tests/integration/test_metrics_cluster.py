"""Metrics counted in several processes add up in Redis, and a fork does not count twice."""

from __future__ import annotations

import os
import uuid

import redis
from prometheus_client.parser import text_string_to_metric_families

from shared.keys import Keys
from shared.telemetry import metrics


def _samples(client: redis.Redis, keys: Keys) -> dict[tuple[str, tuple], float]:
    text = metrics.render(metrics.collect(client, keys)).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_counts_of_a_parent_and_a_forked_child_add_up(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    keys = Keys(f"m{uuid.uuid4().hex[:6]}")
    metrics.configure(client, keys)
    metrics.flush()  # whatever this test process counted before
    metrics.record_task(task="rag.embed", outcome="success", duration_s=0.2)
    pid = os.fork()
    if pid == 0:  # the child: the parent's pending count is not its own
        code = 1
        try:
            metrics.configure(redis.Redis.from_url(redis_url), keys)
            metrics.record_task(task="rag.embed", outcome="success", duration_s=4.0)
            metrics.record_embedded_chunks(computed=30, cached=2)
            code = 0 if metrics.flush() == 6 else 2  # 1 counter, 3 histogram fields, 2 chunks
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert metrics.flush() == 4
    samples = _samples(client, keys)
    task = (("outcome", "success"), ("task", "rag.embed"))
    assert samples[("rag_tasks_total", task)] == 2
    assert samples[("rag_task_duration_seconds_count", task)] == 2
    assert samples[("rag_task_duration_seconds_sum", task)] == 4.2
    assert samples[("rag_task_duration_seconds_bucket", (("le", "0.25"), *task))] == 1
    assert samples[("rag_task_duration_seconds_bucket", (("le", "5.0"), *task))] == 2
    assert samples[("rag_embedded_chunks_total", (("source", "model"),))] == 30
    assert samples[("rag_embedded_chunks_total", (("source", "cache"),))] == 2
    assert metrics.flush() == 0  # nothing new


def test_counts_survive_redis_being_down_until_the_next_flush(redis_url: str) -> None:
    keys = Keys(f"m{uuid.uuid4().hex[:6]}")
    metrics.configure(redis.Redis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1), keys)
    metrics.flush()
    metrics.record_llm_request("ok", 0.5)
    assert metrics.flush() == 0  # unreachable: kept
    client = redis.Redis.from_url(redis_url)
    metrics.configure(client, keys)
    assert metrics.flush() == 4
    samples = _samples(client, keys)
    assert samples[("rag_llm_requests_total", (("outcome", "ok"),))] == 1
    assert samples[("rag_llm_time_to_first_token_seconds_count", ())] == 1
