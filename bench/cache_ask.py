"""Cold vs cached POST /ask through HTTP on loopback with wrk: p50/p99 and cached requests/s.

Run: `python -m bench.cache_ask [--quick]`. Writes bench/results/cache_ask.json.

On a fresh deployment with SciFact ingested (~11.9k chunks; --quick: 600 documents), the API
being one uvicorn worker (uvloop + httptools, as `rag serve` runs it):
- cold: distinct SciFact questions, `use_cache: false`, so every request is the real uncached
  path (query embedding, dense + BM25 search, fusion, sentence embedding of the top chunks);
  wrk, 1 thread, 1 connection, a Lua script that sends each question once and stops after the
  last one (or at the time limit).
- cached: one question (not among the cold ones), asked once with `use_cache: true` to warm
  the answer tier, then repeated by wrk with `use_cache: true`: latency at 1 connection, and
  requests/s over a sweep of connection counts (1 wrk thread: the machine has 2 cores, one of
  them the API's). /cache/stats before and after shows every request was an answer hit.
Latency percentiles are parsed from wrk's `--latency` distribution (50/75/90/99%), and p95/p99.9
come from the script's `done()` hook (same histogram). Without wrk, an asyncio httpx load
generator stands in, and the JSON says so.
Also cached /search (the retrieval tier) over the same sweep; FastAPI's bare floor (one route,
the same request model, one Redis GET: bench/fastapi_floor.py); and cached /ask with auth on
and a per-key rate limit (a second API process on the same Redis serving the same entries).
Targets (issues 5, 14): cached p50 <= 1 ms and p99 <= 2 ms, cold/cached p50 >= 50, cold p50 <= 60 ms, cached /ask
and /search >= 5,000 requests/s on one uvicorn worker.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import redis

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
from services.stack.live import LiveService, free_port

NAME = "cache_ask"
TOP_K = 5

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def _lua_string(text: str) -> str:
    return '"' + "".join(f"\\{b}" for b in text.encode()) + '"'


def lua_script(bodies: list[str], *, stop_after: int) -> str:
    """A wrk script: POST /ask with `bodies` in turn (one static body: wrk's fast path), and a
    done() hook printing exact percentiles as one JSON line."""
    if len(bodies) == 1:
        sending = (
            f'wrk.method = "POST"\nwrk.body = {_lua_string(bodies[0])}\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    else:
        table = ",\n".join(_lua_string(b) for b in bodies)
        sending = (
            'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
            f"local bodies = {{\n{table}\n}}\nlocal i = 0\n"
            "request = function()\n  i = i + 1\n"
            '  return wrk.format("POST", nil, nil, bodies[(i - 1) % #bodies + 1])\nend\n'
        )
    stopping = ""
    if stop_after:
        stopping = (
            f"local seen = 0\nresponse = function(status, headers, body)\n  seen = seen + 1\n"
            f"  if seen >= {stop_after} then wrk.thread:stop() end\nend\n"
        )
    done = (
        "done = function(summary, latency, requests)\n"
        "  local e = summary.errors\n"
        '  io.write(string.format(\'BENCHJSON {"requests":%d,"duration_us":%d,'
        '"min_us":%d,"mean_us":%.1f,"max_us":%d,"p50_us":%d,"p90_us":%d,'
        '"p95_us":%d,"p99_us":%d,"p999_us":%d,"status_errors":%d,'
        '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d}\\n\','
        " summary.requests, summary.duration, latency.min, latency.mean, latency.max,"
        " latency:percentile(50), latency:percentile(90), latency:percentile(95),"
        " latency:percentile(99), latency:percentile(99.9), e.status, e.connect, e.read,"
        " e.write, e.timeout))\n"
        "end\n"
    )
    return sending + stopping + done


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(text: str) -> dict[str, Any]:
    """wrk --latency output (and our done() line) to numbers; latencies in ms."""
    out: dict[str, Any] = {}
    dist = {}
    in_dist = False
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("Latency Distribution"):
            in_dist = True
            continue
        if in_dist:
            m = re.match(r"^(\d+(?:\.\d+)?)%\s+([\d.]+)(us|ms|s|m|h)$", s)
            if m:
                dist[f"p{float(m.group(1)):g}_ms"] = round(_ms(m.group(2), m.group(3)), 4)
                continue
            in_dist = False
        m = re.match(
            r"^Latency\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)\s+([\d.]+)(us|ms|s|m|h)", s
        )
        if m:
            out["mean_ms"] = round(_ms(m.group(1), m.group(2)), 4)
            out["stdev_ms"] = round(_ms(m.group(3), m.group(4)), 4)
            out["max_ms"] = round(_ms(m.group(5), m.group(6)), 4)
        m = re.match(r"^(\d+) requests in ([\d.]+)(us|ms|s|m|h)", s)
        if m:
            out["requests"] = int(m.group(1))
            out["duration_s"] = round(_ms(m.group(2), m.group(3)) / 1000, 3)
        m = re.match(r"^Requests/sec:\s+([\d.]+)", s)
        if m:
            out["requests_per_s"] = float(m.group(1))
        m = re.match(r"^Non-2xx or 3xx responses:\s+(\d+)", s)
        if m:
            out["non_2xx"] = int(m.group(1))
        m = re.match(r"^Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", s)
        if m:
            out["socket_errors"] = dict(
                zip(("connect", "read", "write", "timeout"), map(int, m.groups()), strict=True)
            )
        if s.startswith("BENCHJSON "):
            exact = json.loads(s[len("BENCHJSON ") :])
            out["exact"] = {
                k.replace("_us", "_ms"): round(v / 1000, 4) if k.endswith("_us") else v
                for k, v in exact.items()
            }
    out["latency_distribution"] = dist
    out.setdefault("non_2xx", 0)
    return out


def run_wrk(
    url: str,
    bodies: list[str],
    *,
    connections: int,
    duration_s: float,
    stop_after: int = 0,
    timeout_s: float = 30,
    path: str = "/ask",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "ask.lua"
        extra = "".join(f'wrk.headers["{k}"] = "{v}"\n' for k, v in (headers or {}).items())
        script.write_text(extra + lua_script(bodies, stop_after=stop_after))
        cmd = [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            "--latency",
            f"--timeout={round(timeout_s)}s",
            "-s",
            str(script),
            f"{url}{path}",
        ]
        load_before = loadavg()
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration_s + 120, check=False
        )
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr}\n{proc.stdout}")
    parsed = parse_wrk(proc.stdout)
    parsed["connections"] = connections
    parsed["command"] = " ".join(cmd[:-3] + ["-s", "ask.lua", cmd[-1]])
    parsed["loadavg_before"] = load_before
    parsed["loadavg_after"] = loadavg()
    parsed["raw_output"] = proc.stdout
    # the headline percentiles, from wrk's own --latency lines; p95 from the done() hook
    dist = parsed["latency_distribution"]
    parsed["p50_ms"] = dist.get("p50_ms")
    parsed["p99_ms"] = dist.get("p99_ms")
    parsed["p95_ms"] = parsed.get("exact", {}).get("p95_ms")
    return parsed


async def _python_load(
    url: str,
    bodies: list[str],
    *,
    connections: int,
    duration_s: float,
    stop_after: int,
    path: str = "/ask",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    samples: list[float] = []
    bad = 0
    counter = 0
    deadline = time.perf_counter() + duration_s
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def one() -> None:
            nonlocal counter, bad
            while time.perf_counter() < deadline and (not stop_after or counter < stop_after):
                body = bodies[counter % len(bodies)]
                counter += 1
                t0 = time.perf_counter()
                resp = await client.post(
                    path, content=body,
                    headers={"Content-Type": "application/json", **(headers or {})},
                )
                samples.append(time.perf_counter() - t0)
                bad += resp.status_code >= 400

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    p = percentiles_ms(samples)
    return {
        "connections": connections,
        "requests": len(samples),
        "duration_s": round(elapsed, 3),
        "requests_per_s": round(len(samples) / elapsed, 1),
        "non_2xx": bad,
        **p,
    }


def run_python(
    url: str,
    bodies: list[str],
    *,
    connections: int,
    duration_s: float,
    stop_after: int = 0,
    path: str = "/ask",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    return asyncio.run(
        _python_load(
            url, bodies, connections=connections, duration_s=duration_s, stop_after=stop_after,
            path=path, headers=headers,
        )
    )


def _answer_stats(client: httpx.Client) -> dict[str, int]:
    tier = client.get("/cache/stats").json()["tiers"]["answers"]
    return {"hits": int(tier["hits"]), "misses": int(tier["misses"])}


def run_on(dep: Deployment, corpus_info: dict[str, Any], *, quick: bool) -> dict[str, Any]:
    corpus = corpus_info["corpus"]
    client = dep.client
    has_wrk = shutil.which("wrk") is not None
    load = run_wrk if has_wrk else run_python
    generator = "wrk (1 thread)" if has_wrk else "python asyncio httpx (wrk not found on PATH)"
    log(f"cache_ask with {generator}")

    questions = scifact_queries()
    random.Random(11).shuffle(questions)
    cached_q, cold_qs = questions[0], questions[1 : 1 + (40 if quick else 150)]
    client.delete("/cache/all")

    def body(q: str, use_cache: bool) -> str:
        return json.dumps({"question": q, "corpus": corpus, "top_k": TOP_K, "use_cache": use_cache})

    # cold: three warm-up requests with questions not measured (they also size the run: wrk
    # stops its thread after the last question but sleeps out -d), then each question once
    warm = []
    for q in questions[-3:]:
        t0 = time.perf_counter()
        client.post("/ask", json=json.loads(body(q, False)))
        warm.append(time.perf_counter() - t0)
    estimate = sorted(warm)[1] * len(cold_qs) * 1.25 + 3
    ceiling = 90 if quick else 300
    log(
        f"cold: {len(cold_qs)} distinct questions, use_cache false, 1 connection "
        f"(~{sorted(warm)[1] * 1000:.0f} ms each, run of {min(estimate, ceiling):.0f}s)"
    )
    cold = load(
        dep.url,
        [body(q, False) for q in cold_qs],
        connections=1,
        duration_s=min(estimate, ceiling),
        stop_after=len(cold_qs),
    )
    log(f"  cold p50 {cold['p50_ms']} ms, p99 {cold['p99_ms']} ms, {cold['requests']} requests")

    # cached: warm the answer tier once, check it is a hit, then repeat it
    first = client.post("/ask", json=json.loads(body(cached_q, True))).json()
    second = client.post("/ask", json=json.loads(body(cached_q, True))).json()
    if not second["cache_info"]["answer_hit"] or second["answer"] != first["answer"]:
        raise RuntimeError(f"the warm-up did not make an answer hit: {second['cache_info']}")
    cached_body = [body(cached_q, True)]
    load(dep.url, cached_body, connections=16, duration_s=2)  # settle connections and loop
    stats0 = _answer_stats(client)
    secs = 3 if quick else 10
    log(f"cached: latency at 1 connection, {secs}s")
    cached_lat = load(dep.url, cached_body, connections=1, duration_s=secs)
    log(
        f"  cached p50 {cached_lat['p50_ms']} ms, p99 {cached_lat['p99_ms']} ms, "
        f"{cached_lat['requests_per_s']} req/s"
    )
    sweep = []
    for c in [8, 32] if quick else [4, 16, 32]:
        r = load(dep.url, cached_body, connections=c, duration_s=secs)
        log(f"  cached at {c} connections: {r['requests_per_s']} req/s, p50 {r['p50_ms']} ms")
        sweep.append(r)
    stats1 = _answer_stats(client)
    sent = cached_lat["requests"] + sum(r["requests"] for r in sweep)
    connections = [8, 32] if quick else [4, 16, 32]
    search_body = [json.dumps({"query": cached_q, "corpus": corpus, "top_k": 10})]
    client.post("/search", json=json.loads(search_body[0]))  # warm the retrieval tier
    search_sweep = _sweep(load, dep.url, search_body, connections, secs, path="/search")
    floor_sweep, auth_sweep = _floor_and_auth(dep, load, cached_body, connections, secs,
                                              corpus=corpus, question=cached_q)
    hits = stats1["hits"] - stats0["hits"]
    misses = stats1["misses"] - stats0["misses"]
    best = max([cached_lat, *sweep], key=lambda r: r["requests_per_s"])

    ratio = (
        round(cold["p50_ms"] / cached_lat["p50_ms"], 1)
        if cold.get("p50_ms") and cached_lat.get("p50_ms")
        else None
    )
    for r in sweep:  # keep wrk's own output for the two headline runs only
        r.pop("raw_output", None)
    return {
        "quick": quick,
        "corpus": corpus_info,
        "load_generator": generator,
        "api": "one uvicorn worker (rag serve: uvloop + httptools), loopback",
        "top_k": TOP_K,
        "cold": {"questions": len(cold_qs), "distinct": True, "use_cache": False, **cold},
        "cached": {"question": cached_q, "use_cache": True, **cached_lat},
        "cached_throughput_sweep": sweep,
        "cached_best_requests_per_s": best["requests_per_s"],
        "cached_best_connections": best["connections"],
        "cached_search_sweep": search_sweep,
        "cached_search_best_requests_per_s": max(r["requests_per_s"] for r in search_sweep),
        "fastapi_floor_sweep": floor_sweep,
        "fastapi_floor_best_requests_per_s": max(r["requests_per_s"] for r in floor_sweep),
        "cached_ask_auth_on_sweep": auth_sweep,
        "cached_ask_auth_on_best_requests_per_s": max(
            (r["requests_per_s"] for r in auth_sweep), default=None
        ),
        "cached_answer_tier": {
            "requests_sent": sent,
            "answer_hits": hits,
            "answer_misses": misses,
            "all_hits": misses == 0 and hits >= sent,
        },
        "cold_over_cached_p50": ratio,
        "targets": {
            "cached_p50_ms": target(cached_lat.get("p50_ms"), op="<=", bound=1),
            "cold_p50_ms": target(cold.get("p50_ms"), op="<=", bound=60),
            "cold_over_cached_p50": target(ratio, op=">=", bound=50),
            "cached_requests_per_s": target(best["requests_per_s"], op=">=", bound=5000),
            "cached_p99_ms": target(cached_lat.get("p99_ms"), op="<=", bound=2),
            "cached_search_requests_per_s": target(
                max(r["requests_per_s"] for r in search_sweep), op=">=", bound=5000
            ),
        },
    }


def _sweep(load: Any, url: str, bodies: list[str], connections: list[int], secs: float,
           **kw: Any) -> list[dict[str, Any]]:
    out = []
    for c in connections:
        r = load(url, bodies, connections=c, duration_s=secs, **kw)
        r.pop("raw_output", None)
        log(f"  {kw.get('path', '/ask')} at {c} connections: {r['requests_per_s']} req/s, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms")
        out.append(r)
    return out


def _floor_and_auth(
    dep: Deployment, load: Any, cached_body: list[str], connections: list[int], secs: float,
    *, corpus: str, question: str,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """FastAPI's bare floor (one route, one Redis GET) and the service's cached /ask with auth
    and a per-key rate limit on: a second API process on the same Redis serves the same hits."""
    live = dep.live
    port = free_port()
    prefix = live.env["RAG_KEY_PREFIX"]
    r = redis.Redis.from_url(live.env["RAG_REDIS_URL"])
    key = next(iter(r.scan_iter(match=f"{prefix}:cache:answers:*", count=1000)), b"").decode()
    floor = subprocess.Popen(
        [sys.executable, "-m", "bench.fastapi_floor", "--port", str(port),
         "--redis", live.env["RAG_REDIS_URL"], "--key", key],
        cwd=Path(__file__).resolve().parents[1], env=os.environ.copy(),
    )
    try:
        _wait_up(f"http://127.0.0.1:{port}/docs")
        log("FastAPI bare floor (one route, one Redis GET):")
        floor_sweep = _sweep(load, f"http://127.0.0.1:{port}", cached_body, connections, secs)
    finally:
        floor.terminate()
        floor.wait(timeout=20)
    admin = "bench-admin-key-0123456789abcdef"
    replica = LiveService(
        redis_url=live.env["RAG_REDIS_URL"],
        data_dir=live.data_dir.parent / "replica-auth",
        corpus_root=Path(live.env["RAG_CORPUS_ROOT"]),
        workers=0,
        key_prefix=prefix,
        env={"RAG_CONSUME_INDEX": "false", "RAG_AUTH": "on", "RAG_ADMIN_KEY": admin,
             "RAG_RATE_LIMIT_PER_S": "1000000", "RAG_RATE_LIMIT_BURST": "1000000"},
    )
    try:
        replica.start()
        headers = {"Authorization": f"Bearer {admin}"}
        check = httpx.post(f"{replica.url}/ask", content=cached_body[0], headers={
            **headers, "Content-Type": "application/json"}, timeout=60).json()
        if not check.get("cache_info", {}).get("answer_hit"):
            raise RuntimeError(f"the auth-on replica did not serve a hit: {check}")
        log("cached /ask with auth on and a per-key rate limit (second API process):")
        auth_sweep = _sweep(load, replica.url, cached_body, connections, secs, headers=headers)
    finally:
        replica.stop()
    return floor_sweep, auth_sweep


def _wait_up(url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up")


def summary_lines(r: dict[str, Any]) -> str:
    c, k = r["cold"], r["cached"]
    lines = [
        (
            f"cache_ask ({r['corpus'].get('corpus_chunks')} chunks, {r['load_generator']}"
            f"{', quick' if r['quick'] else ''}):"
        ),
        f"  cold   p50 {c['p50_ms']:9.3f} ms  p99 {c['p99_ms']:9.3f} ms  ({c['requests']} distinct questions)",
        f"  cached p50 {k['p50_ms']:9.3f} ms  p99 {k['p99_ms']:9.3f} ms  (1 connection)",
        (
            f"  cold/cached p50 = {r['cold_over_cached_p50']}x; cached best "
            f"{r['cached_best_requests_per_s']:.0f} req/s at {r['cached_best_connections']} connections"
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"the first {QUICK_SCIFACT_DOCS} SciFact docs, 40 cold questions, 3 s runs",
    )
    args = parser.parse_args(argv)
    with scifact_deployment(docs=QUICK_SCIFACT_DOCS if args.quick else None) as (dep, info):
        report = run_on(dep, info, quick=args.quick)
    write_result(NAME, report)
    print(summary_lines(report))
    return report


if __name__ == "__main__":
    main(sys.argv[1:])
