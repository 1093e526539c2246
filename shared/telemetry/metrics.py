"""Prometheus metrics of every rag-papers process, summed over the whole cluster in Redis.

A process counts into an in-memory table of deltas (no I/O on the hot path) and flushes it
into one broker hash per metric with HINCRBYFLOAT: a worker after each task, the API every
few seconds and before each scrape. Any API replica renders the cluster's totals at
GET /metrics, so one scrape covers the API replicas and every worker, wherever they run
(workers serve no HTTP). Scraping each replica separately returns the same series from
each: aggregate those with `max without (instance)`, or scrape one target.

Metrics recorded here (all `rag_`):
  rag_http_request_duration_seconds{method,route,status}   histogram
  rag_tasks_total{task,outcome}, rag_task_duration_seconds{task,outcome}
  rag_embedded_chunks_total{source}                        source: model | cache
  rag_llm_requests_total{outcome}, rag_llm_time_to_first_token_seconds
The API adds gauges read at scrape time (queue depth, jobs by state) and the cache tiers'
hit/miss counters, which the cache scripts keep in Redis themselves.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import redis
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric as Family
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from shared.keys import Keys

log = logging.getLogger(__name__)

CONTENT_TYPE = CONTENT_TYPE_LATEST


@dataclass(frozen=True, slots=True)
class Metric:
    """A counter, or a histogram when it has buckets."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()


HTTP_REQUEST_DURATION = Metric(
    "rag_http_request_duration_seconds",
    "Time from a request's arrival to the end of its response (for an event stream, its "
    "whole life), by method, route template and status.",
    ("method", "route", "status"),
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
TASKS = Metric(
    "rag_tasks_total",
    "Celery tasks run, by task and outcome (success, failure, retry).",
    ("task", "outcome"),
)
TASK_DURATION = Metric(
    "rag_task_duration_seconds",
    "Run time of Celery tasks, by task and outcome.",
    ("task", "outcome"),
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
EMBEDDED_CHUNKS = Metric(
    "rag_embedded_chunks_total",
    "Chunks embedded for ingestion, by where the vector came from: model or cache.",
    ("source",),
)
LLM_REQUESTS = Metric(
    "rag_llm_requests_total",
    "Answer generations by a language model, by outcome (ok, error, timeout, fallback, ...).",
    ("outcome",),
)
LLM_TIME_TO_FIRST_TOKEN = Metric(
    "rag_llm_time_to_first_token_seconds",
    "Time from sending a generation request to its first token.",
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60),
)
RECORDED = (
    HTTP_REQUEST_DURATION,
    TASKS,
    TASK_DURATION,
    EMBEDDED_CHUNKS,
    LLM_REQUESTS,
    LLM_TIME_TO_FIRST_TOKEN,
)


# ---- counting, in this process --------------------------------------------------------------


class _Deltas:
    """What this process counted since its last flush: (metric, field) -> amount."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[tuple[str, str], float] = {}

    def add(self, items: Iterable[tuple[str, str, float]]) -> None:
        with self._lock:
            for name, field, amount in items:
                self._values[(name, field)] = self._values.get((name, field), 0.0) + amount

    def copy(self) -> dict[tuple[str, str], float]:
        with self._lock:
            return dict(self._values)

    def take(self) -> dict[tuple[str, str], float]:
        with self._lock:
            values, self._values = self._values, {}
        return values

    def reset(self) -> None:
        """In a forked child: the parent's counts are the parent's to flush."""
        self._lock = threading.Lock()
        self._values = {}


_DELTAS = _Deltas()
os.register_at_fork(after_in_child=_DELTAS.reset)


@functools.lru_cache(maxsize=4096)  # few distinct label sets; this runs on every request
def _field(labelvalues: tuple[str, ...], part: str | None = None) -> str:
    return json.dumps([*labelvalues, *([part] if part else [])], separators=(",", ":"))


def _checked(metric: Metric, labelvalues: Sequence[str]) -> tuple[str, ...]:
    if len(labelvalues) != len(metric.labels):
        raise ValueError(f"{metric.name} takes labels {metric.labels}, got {tuple(labelvalues)}")
    return tuple(str(v) for v in labelvalues)


def inc(metric: Metric, *labelvalues: str, amount: float = 1.0) -> None:
    if metric.buckets:
        raise ValueError(f"{metric.name} is a histogram: observe() it")
    if amount:
        _DELTAS.add([(metric.name, _field(_checked(metric, labelvalues)), amount)])


def observe(metric: Metric, value: float, *labelvalues: str) -> None:
    if not metric.buckets:
        raise ValueError(f"{metric.name} is a counter: inc() it")
    values = _checked(metric, labelvalues)
    bound = next((b for b in metric.buckets if value <= b), math.inf)
    _DELTAS.add(
        [
            (metric.name, _field(values, f"le:{floatToGoString(bound)}"), 1.0),
            (metric.name, _field(values, "sum"), value),
            (metric.name, _field(values, "count"), 1.0),
        ]
    )


def record_http_request(*, method: str, route: str, status: int, duration_s: float) -> None:
    observe(HTTP_REQUEST_DURATION, duration_s, method, route, str(status))


def record_task(*, task: str, outcome: str, duration_s: float | None) -> None:
    inc(TASKS, task, outcome)
    if duration_s is not None:
        observe(TASK_DURATION, duration_s, task, outcome)


def record_embedded_chunks(*, computed: int, cached: int) -> None:
    inc(EMBEDDED_CHUNKS, "model", amount=computed)
    inc(EMBEDDED_CHUNKS, "cache", amount=cached)


def record_llm_request(outcome: str, ttft_s: float | None) -> None:
    """One generation request: its outcome ('ok', 'error', 'timeout', 'fallback', ...) and,
    when a first token came, how long it took."""
    inc(LLM_REQUESTS, outcome)
    if ttft_s is not None:
        observe(LLM_TIME_TO_FIRST_TOKEN, ttft_s)


def pending() -> dict[tuple[str, str], float]:
    """What this process counted and has not flushed yet: (metric, field) -> amount."""
    return _DELTAS.copy()


# ---- flushing into Redis ---------------------------------------------------------------------

_sink: tuple[redis.Redis, Keys] | None = None


def configure(client: redis.Redis, keys: Keys) -> None:
    """Where `flush()` sends this process's counts: the broker, under the key prefix."""
    global _sink
    _sink = (client, keys)


def flush() -> int:
    """Add this process's counts to the cluster's totals; returns the fields written. If
    Redis is down they are kept for the next flush."""
    if _sink is None:
        return 0
    values = _DELTAS.take()
    if not values:
        return 0
    client, keys = _sink
    pipe = client.pipeline(transaction=False)
    for (name, field), amount in values.items():
        pipe.hincrbyfloat(keys.metric(name), field, amount)
    try:
        pipe.execute()
    except redis.RedisError as exc:
        _DELTAS.add((name, field, amount) for (name, field), amount in values.items())
        log.warning("metrics not flushed, kept for the next try: %s", exc)
        return 0
    return len(values)


# ---- reading and rendering -------------------------------------------------------------------


def collect(client: redis.Redis, keys: Keys) -> list[Family]:
    """The recorded metrics' cluster totals, as Prometheus metric families."""
    pipe = client.pipeline(transaction=False)
    for metric in RECORDED:
        pipe.hgetall(keys.metric(metric.name))
    families: list[Family] = []
    for metric, raw in zip(RECORDED, pipe.execute(), strict=True):
        values = {tuple(json.loads(k)): float(v) for k, v in raw.items()}
        families.append(_histogram(metric, values) if metric.buckets else _counter(metric, values))
    return families


def _counter(metric: Metric, values: Mapping[tuple[str, ...], float]) -> Family:
    family = CounterMetricFamily(metric.name, metric.help, labels=metric.labels)
    for labelvalues, value in sorted(values.items()):
        if len(labelvalues) == len(metric.labels):
            family.add_metric(list(labelvalues), value)
    return family


def _histogram(metric: Metric, values: Mapping[tuple[str, ...], float]) -> Family:
    n = len(metric.labels)
    series: dict[tuple[str, ...], dict[str, float]] = {}
    for field, value in values.items():
        if len(field) == n + 1:
            series.setdefault(field[:n], {})[field[n]] = value
    family = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
    for labelvalues, parts in sorted(series.items()):
        bounds = {floatToGoString(b): b for b in (*metric.buckets, math.inf)}
        for part in parts:
            if part.startswith("le:"):
                bounds.setdefault(part[3:], float(part[3:]))
        cumulative = 0.0
        buckets = []
        for text, _ in sorted(bounds.items(), key=lambda kv: kv[1]):
            cumulative += parts.get(f"le:{text}", 0.0)
            buckets.append((text, cumulative))
        family.add_metric(list(labelvalues), buckets, parts.get("sum", 0.0))
    return family


def counter(
    name: str, help: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]
) -> Family:
    family = CounterMetricFamily(name, help, labels=list(labels))
    for labelvalues, value in samples:
        family.add_metric(list(labelvalues), value)
    return family


def gauge(name: str, help: str, label: str, values: Mapping[str, float]) -> Family:
    family = GaugeMetricFamily(name, help, labels=[label])
    for value_label, value in values.items():
        family.add_metric([value_label], value)
    return family


class _Families(Collector):
    def __init__(self, families: Iterable[Family]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Family]:
        return iter(self._families)


def render(families: Iterable[Family]) -> bytes:
    """The Prometheus text exposition of `families`."""
    return generate_latest(_Families(families))
