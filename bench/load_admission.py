"""/health and cached /ask under 200 concurrent cold /ask: admission control holds them up.

Run: `python -m bench.load_admission [--quick]`. Writes bench/results/load_admission.json.

On a fresh deployment with SciFact ingested (~11.9k chunks; --quick: 600 documents), the API
one uvicorn worker with its defaults (RAG_MAX_CONCURRENT_QUERIES = twice the cores,
RAG_QUERY_QUEUE_TIMEOUT_S = 10):
- load: 200 connections, each sending distinct SciFact questions with `use_cache: false`
  (every one the full cold path) back to back for the run's duration; wrk (1 thread, a Lua
  script cycling through the questions), or an asyncio httpx client without wrk. Each answer
  is a 200 (admitted in turn) or a 503 with Retry-After (no slot within the queue timeout).
- probes, meanwhile, one request at a time each, from two threads of this process: GET /health
  and a cached POST /ask (a question asked once beforehand with `use_cache: true`, so every
  probe is an answer-tier hit served on the event loop). The same probes run for a few
  seconds before the load as the unloaded baseline, with five cold asks one at a time (what
  one cold ask costs on this machine right now).
- the API process's resident memory before and after (it grew to 4.5 GB without admission
  control) and the query gate's counters from /health.
Targets (issue 10): /health p99 and cached /ask p99 under load <= 250 ms; no probe fails;
API memory growth <= 500 MiB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.cache_ask import run_wrk
from bench.common import (
    QUICK_SCIFACT_DOCS,
    Deployment,
    loadavg,
    log,
    percentiles_ms,
    scifact_deployment,
    scifact_queries,
    target,
    write_result,
)

NAME = "load_admission"
CONNECTIONS = 200
TOP_K = 5


def _rss_mib(pid: int | None) -> float | None:
    if pid is None:
        return None
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


class Probe(threading.Thread):
    """One request at a time, as fast as answers come, until stopped; latencies kept."""

    def __init__(self, url: str, method: str, path: str, body: dict[str, Any] | None) -> None:
        super().__init__(daemon=True)
        self.url, self.method, self.path, self.body = url, method, path, body
        self.samples: list[float] = []
        self.failures: dict[str, int] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as client:
            while not self.stop.is_set():
                t0 = time.perf_counter()
                try:
                    resp = client.request(self.method, self.path, json=self.body)
                    status = str(resp.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                self.samples.append(time.perf_counter() - t0)
                if status != "200":
                    self.failures[status] = self.failures.get(status, 0) + 1
                self.stop.wait(0.02)

    def report(self) -> dict[str, Any]:
        return {**percentiles_ms(self.samples), "failures": self.failures}


def _probes(url: str, cached_body: dict[str, Any]) -> dict[str, Probe]:
    return {
        "health": Probe(url, "GET", "/health", None),
        "cached_ask": Probe(url, "POST", "/ask", cached_body),
    }


def _probe_for(url: str, cached_body: dict[str, Any], seconds: float) -> dict[str, Any]:
    probes = _probes(url, cached_body)
    for p in probes.values():
        p.start()
    time.sleep(seconds)
    for p in probes.values():
        p.stop.set()
    for p in probes.values():
        p.join()
    return {name: p.report() for name, p in probes.items()}


async def _python_load(
    url: str, bodies: list[str], *, connections: int, duration_s: float
) -> dict[str, Any]:
    samples: list[float] = []
    statuses: dict[str, int] = {}
    counter = 0
    deadline = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=120) as client:

        async def one() -> None:
            nonlocal counter
            while time.perf_counter() < deadline:
                body = bodies[counter % len(bodies)]
                counter += 1
                t0 = time.perf_counter()
                try:
                    resp = await client.post("/ask", content=body,
                                             headers={"Content-Type": "application/json"})
                    status = str(resp.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                samples.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    return {"connections": connections, "requests": len(samples), "duration_s": round(elapsed, 3),
            "statuses": statuses, **percentiles_ms(samples)}


def run_on(dep: Deployment, corpus_info: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    corpus = corpus_info["corpus"]
    client = dep.client
    api_pid = dep.live.api.pid if dep.live.api is not None else None
    has_wrk = shutil.which("wrk") is not None
    generator = "wrk (1 thread)" if has_wrk else "python asyncio httpx (wrk not found on PATH)"
    questions = scifact_queries()
    random.Random(23).shuffle(questions)
    cached_q, cold_qs = questions[0], questions[1:]
    cached_body = {"question": cached_q, "corpus": corpus, "top_k": TOP_K, "use_cache": True}
    client.post("/ask", json=cached_body)
    if not client.post("/ask", json=cached_body).json()["cache_info"]["answer_hit"]:
        raise RuntimeError("the cached probe question is not an answer-tier hit")
    gate = client.get("/health").json().get("queries")
    seconds = 15 if quick else 40

    log(f"load_admission with {generator}: baseline probes, 5 s; 5 cold asks one at a time")
    baseline = _probe_for(dep.url, cached_body, 5)
    alone = []
    for q in cold_qs[-5:]:  # not among the load's first questions
        t0 = time.perf_counter()
        client.post("/ask", json={"question": q, "corpus": corpus, "top_k": TOP_K,
                                  "use_cache": False}).raise_for_status()
        alone.append(time.perf_counter() - t0)
    baseline["cold_ask_alone"] = percentiles_ms(alone)
    rss_before = _rss_mib(api_pid)
    bodies = [json.dumps({"question": q, "corpus": corpus, "top_k": TOP_K, "use_cache": False})
              for q in cold_qs]
    log(f"  {CONNECTIONS} connections of cold asks for {seconds} s, probes alongside")
    probes = _probes(dep.url, cached_body)
    for p in probes.values():
        p.start()
    load_before = loadavg()
    if has_wrk:
        load = run_wrk(dep.url, bodies, connections=CONNECTIONS, duration_s=seconds,
                       timeout_s=60)
        load.pop("raw_output", None)
    else:
        load = asyncio.run(_python_load(dep.url, bodies, connections=CONNECTIONS,
                                        duration_s=seconds))
    for p in probes.values():
        p.stop.set()
    for p in probes.values():
        p.join()
    under_load = {name: p.report() for name, p in probes.items()}
    rss_after = _rss_mib(api_pid)
    after = client.get("/health")
    log(
        f"  /health p99 {under_load['health']['p99_ms']} ms, cached /ask p99 "
        f"{under_load['cached_ask']['p99_ms']} ms; API RSS {rss_before} -> {rss_after} MiB"
    )
    worst = max(under_load["health"]["p99_ms"], under_load["cached_ask"]["p99_ms"])
    growth = None if rss_before is None or rss_after is None else round(rss_after - rss_before, 1)
    failures = sum(sum(r["failures"].values()) for r in under_load.values())
    return {
        "quick": quick,
        "corpus": corpus_info,
        "load_generator": generator,
        "api": "one uvicorn worker (rag serve), loopback, default admission settings",
        "gate": gate,
        "cold_load": {"connections": CONNECTIONS, "seconds": seconds, "use_cache": False,
                      "loadavg_before": load_before, "loadavg_after": loadavg(), **load},
        "baseline": baseline,
        "under_load": under_load,
        "health_after_load": after.status_code,
        "api_rss_mib": {"before": rss_before, "after": rss_after, "growth": growth},
        "targets": {
            "health_p99_ms_under_load": target(under_load["health"]["p99_ms"], op="<=", bound=250),
            "cached_ask_p99_ms_under_load": target(
                under_load["cached_ask"]["p99_ms"], op="<=", bound=250),
            "probe_failures": target(failures, op="<=", bound=0),
            "api_rss_growth_mib": target(growth, op="<=", bound=500),
        },
        "worst_probe_p99_ms": worst,
    }


def summary_lines(r: dict[str, Any]) -> str:
    h, c = r["under_load"]["health"], r["under_load"]["cached_ask"]
    load = r["cold_load"]
    outcomes = load.get("statuses") or {"non_2xx": load.get("non_2xx"),
                                       "requests": load.get("requests")}
    alone = r["baseline"]["cold_ask_alone"]["p50_ms"]
    return "\n".join([
        (f"load_admission ({CONNECTIONS} connections of cold /ask, {r['load_generator']}"
         f"{', quick' if r['quick'] else ''}; gate {r['gate']}):"),
        f"  /health     p50 {h['p50_ms']:8.2f} ms  p99 {h['p99_ms']:8.2f}  max {h['max_ms']:8.2f}",
        f"  cached /ask p50 {c['p50_ms']:8.2f} ms  p99 {c['p99_ms']:8.2f}  max {c['max_ms']:8.2f}",
        f"  cold asks: {outcomes} (alone: p50 {alone:.0f} ms); API RSS {r['api_rss_mib']}",
    ])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"the first {QUICK_SCIFACT_DOCS} SciFact docs, 15 s of load")
    args = parser.parse_args(argv)
    with scifact_deployment(docs=QUICK_SCIFACT_DOCS if args.quick else None) as (dep, info):
        report = run_on(dep, info, quick=args.quick)
    write_result(NAME, report)
    print(summary_lines(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
