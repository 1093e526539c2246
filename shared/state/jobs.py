"""Ingestion job records in Redis, and the events that report their progress.

A job is a Redis hash of counters and fields, a hash of per-file outcomes, and a Stream of
events (each also PUBLISHed for live listeners). Any process may update a job; the record is
rebuilt from Redis on every read, so an API restart loses nothing.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import redis

from shared.errors import NotFoundError
from shared.keys import Keys
from shared.state.waiting import waiting_for

log = logging.getLogger(__name__)

TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})
# A parsed file weighs as much as this many embedded chunks in the progress estimate.
_FILE_WEIGHT = 4.0
_COUNTERS = (
    "files_total",
    "files_parsed",
    "chunks_total",
    "chunks_embedded",
    "chunks_indexed",
    "embeddings_computed",
    "embeddings_cached",
)

# Progress only moves forward, however the updates of several processes interleave.
_RAISE_PROGRESS = """
local cur = tonumber(redis.call('HGET', KEYS[1], 'progress') or '0')
local new = tonumber(ARGV[1])
if new > cur then
  redis.call('HSET', KEYS[1], 'progress', ARGV[1])
  return ARGV[1]
end
return tostring(cur)
"""


def now() -> float:
    return time.time()


class JobStore:
    def __init__(
        self,
        client: redis.Redis,
        keys: Keys,
        *,
        retention_s: float,
        redelivery_s: float = 60,
        restore_interval_s: float = 10,
    ) -> None:
        self._r = client
        self._k = keys
        self._retention_s = int(retention_s)
        self._redelivery_s = redelivery_s
        self._restore_interval_s = restore_interval_s
        self._raise_progress = client.register_script(_RAISE_PROGRESS)

    # ---- creation and reading -------------------------------------------------------------

    def create(
        self,
        *,
        corpus: str,
        path: str,
        abs_path: str,
        root: str,
        source_prefix: str = "",
        sync: bool = False,
        passwords: list[str] | None = None,
        origin: str = "path",
        owner: str = "",
    ) -> str:
        """A queued job. `owner`: the id of the API key that asked for it (who may see it)."""
        job_id = uuid.uuid4().hex
        created = now()
        fields: dict[str, Any] = {
            "job_id": job_id,
            "corpus": corpus,
            "path": path,
            "abs_path": abs_path,
            "root": root,
            "source_prefix": source_prefix,
            "origin": origin,
            "owner": owner,
            "sync": int(sync),
            "state": "queued",
            "stage": "queued",
            "message": "waiting for a worker",
            "progress": 0.0,
            "created_at": created,
            "heartbeat_at": created,
        }
        fields.update({name: 0 for name in _COUNTERS})
        pipe = self._r.pipeline()
        pipe.hset(self._k.job(job_id), mapping=fields)
        pipe.zadd(self._k.jobs_index(), {job_id: created})
        if passwords:
            pipe.set(self._k.job_secrets(job_id), json.dumps(passwords), ex=86400)
        pipe.execute()
        self.publish(job_id)
        log.info("job %s queued: corpus %s, %s", job_id, corpus, path)
        return job_id

    def raw(self, job_id: str) -> dict[str, str]:
        data = self._r.hgetall(self._k.job(job_id))
        if not data:
            raise NotFoundError(f"job {job_id!r} not found (finished jobs expire after "
                                "RAG_JOB_RETENTION_DAYS)")
        return {k.decode(): v.decode() for k, v in data.items()}

    def field(self, job_id: str, name: str) -> str | None:
        value = self._r.hget(self._k.job(job_id), name)
        return value.decode() if value is not None else None

    def passwords(self, job_id: str) -> list[str]:
        value = self._r.get(self._k.job_secrets(job_id))
        return list(json.loads(value)) if value else []

    def files(self, job_id: str) -> list[dict[str, Any]]:
        data = self._r.hgetall(self._k.job_files(job_id))
        rows = sorted(((int(k), json.loads(v)) for k, v in data.items()), key=lambda kv: kv[0])
        return [row for _, row in rows]

    def record(self, job_id: str) -> dict[str, Any]:
        """The job as clients see it (the API contract's fields and a few more)."""
        raw = self.raw(job_id)
        files = self.files(job_id)
        workers = {
            k.decode(): int(v) for k, v in self._r.hgetall(self._k.job_workers(job_id)).items()
        }
        counters = {name: int(float(raw.get(name, 0))) for name in _COUNTERS}
        failed = [f for f in files if f["outcome"] == "failed"]
        started = _float_or_none(raw.get("started_at"))
        finished = _float_or_none(raw.get("finished_at"))
        progress = float(raw.get("progress", 0.0))
        elapsed = ((finished or now()) - started) if started else 0.0
        record: dict[str, Any] = {
            "job_id": job_id,
            "corpus": raw["corpus"],
            "path": raw["path"],
            "state": raw["state"],
            "stage": raw["stage"],
            "progress": round(progress, 4),
            "message": raw.get("message", ""),
            "files_total": counters["files_total"],
            "files_done": len(files),
            "files_failed": len(failed),
            "files_parsed": counters["files_parsed"],
            "chunks_total": counters["chunks_total"],
            "chunks_embedded": counters["chunks_embedded"],
            "chunks_indexed": counters["chunks_indexed"],
            "embeddings_computed": counters["embeddings_computed"],
            "embeddings_cached": counters["embeddings_cached"],
            "current_file": raw.get("current_file") or None,
            "chunks_per_s": round(counters["chunks_embedded"] / elapsed, 2) if elapsed else None,
            "eta_s": _eta(progress, elapsed, raw["state"]),
            "errors": [{"file": f["file"], "error": f["reason"]} for f in failed],
            "files": files,
            "workers": workers,
            "sync": bool(int(raw.get("sync", 0))),
            "created_at": float(raw["created_at"]),
            "started_at": started,
            "finished_at": finished,
            "heartbeat_at": _float_or_none(raw.get("heartbeat_at")),
            "retry_of": raw.get("retry_of") or None,
            "owner": raw.get("owner") or None,
            "waiting_for": None,
        }
        if raw["state"] in ("queued", "running"):
            record["waiting_for"] = waiting_for(
                self._r,
                self._k,
                job_id,
                redelivery_s=self._redelivery_s,
                restore_interval_s=self._restore_interval_s,
            )
        return record

    def list(
        self,
        *,
        state: str | None = None,
        limit: int = 50,
        visible: Callable[[dict[str, Any]], bool] | None = None,
    ) -> list[dict[str, Any]]:
        """The newest jobs first; `visible` keeps only the records it accepts (an API key's)."""
        out: list[dict[str, Any]] = []
        ids = [i.decode() for i in self._r.zrevrange(self._k.jobs_index(), 0, -1)]
        for job_id in ids:
            try:
                rec = self.record(job_id)
            except NotFoundError:  # expired: drop it from the index
                self._r.zrem(self._k.jobs_index(), job_id)
                continue
            if (state is None or rec["state"] == state) and (visible is None or visible(rec)):
                rec.pop("files")
                out.append(rec)
                if len(out) >= limit:
                    break
        return out

    def count_by_state(self) -> dict[str, int]:
        """How many jobs are in each state (expired ones not counted), for /metrics."""
        counts = dict.fromkeys(("queued", "running", *sorted(TERMINAL_STATES)), 0)
        ids = self._r.zrange(self._k.jobs_index(), 0, -1)
        if not ids:
            return counts
        pipe = self._r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(self._k.job(job_id.decode()), "state")
        for state in pipe.execute():
            if state is not None:
                counts[state.decode()] = counts.get(state.decode(), 0) + 1
        return counts

    # ---- updates ---------------------------------------------------------------------------

    def update(self, job_id: str, **fields: Any) -> None:
        fields["heartbeat_at"] = now()
        self._r.hset(self._k.job(job_id), mapping=fields)

    def start(self, job_id: str, *, files_total: int) -> None:
        key = self._k.job(job_id)
        pipe = self._r.pipeline()
        pipe.hsetnx(key, "started_at", now())
        pipe.hset(
            key,
            mapping={
                "state": "running",
                "stage": "parsing",
                "files_total": files_total,
                "message": f"{files_total} files to read",
                "heartbeat_at": now(),
            },
        )
        pipe.execute()

    def add(self, job_id: str, **increments: int) -> None:
        key = self._k.job(job_id)
        pipe = self._r.pipeline()
        for name, n in increments.items():
            if n:
                pipe.hincrby(key, name, n)
        pipe.hset(key, "heartbeat_at", now())
        pipe.execute()

    def count_worker_batch(self, job_id: str, worker: str) -> None:
        self._r.hincrby(self._k.job_workers(job_id), worker, 1)

    def record_file(self, job_id: str, file_no: int, outcome: dict[str, Any]) -> tuple[bool, bool]:
        """Store one file's outcome once: (newly recorded, and it was the job's last file)."""
        key = self._k.job_files(job_id)
        if not self._r.hsetnx(key, str(file_no), json.dumps(outcome)):
            return False, False  # a redelivered task: the first outcome stands
        self._r.hset(self._k.job(job_id), "heartbeat_at", now())
        return True, self.all_files_done(job_id) and self.claim_finalize(job_id)

    def all_files_done(self, job_id: str) -> bool:
        total = int(self._r.hget(self._k.job(job_id), "files_total") or 0)
        return self._r.hlen(self._k.job_files(job_id)) >= total

    def mark_parsed(self, job_id: str, file_no: int) -> bool:
        """True the first time file `file_no` of the job is marked parsed."""
        return bool(self._r.hsetnx(self._k.job_parsed(job_id), str(file_no), 1))

    def was_parsed(self, job_id: str, file_no: int) -> bool:
        return bool(self._r.hexists(self._k.job_parsed(job_id), str(file_no)))

    def claim_finalize(self, job_id: str) -> bool:
        return bool(self._r.set(self._k.job_finalize_sent(job_id), 1, nx=True, ex=86400))

    def finish(self, job_id: str, *, state: str, message: str) -> None:
        assert state in TERMINAL_STATES
        key = self._k.job(job_id)
        if self.field(job_id, "state") in TERMINAL_STATES:
            return
        self._r.hset(
            key,
            mapping={
                "state": state,
                "stage": state,
                "message": message,
                "finished_at": now(),
                "heartbeat_at": now(),
                "current_file": "",
            },
        )
        if state == "succeeded":
            self._raise_progress(keys=[key], args=[1.0])
        log.info("job %s %s: %s", job_id, state, message)
        self.publish(job_id, event=state)
        self._expire(job_id)

    def _expire(self, job_id: str) -> None:
        pipe = self._r.pipeline()
        for key in (
            self._k.job(job_id),
            self._k.job_files(job_id),
            self._k.job_workers(job_id),
            self._k.job_events(job_id),
            self._k.job_cancel(job_id),
            self._k.job_finalize_sent(job_id),
            self._k.job_seen_sources(job_id),
            self._k.job_parsed(job_id),
        ):
            pipe.expire(key, self._retention_s)
        pipe.expire(self._k.job_secrets(job_id), self._retention_s)  # for retry
        pipe.execute()

    def is_terminal(self, job_id: str) -> bool:
        return self.field(job_id, "state") in TERMINAL_STATES

    # ---- cancel ------------------------------------------------------------------------------

    def request_cancel(self, job_id: str) -> None:
        self._r.set(self._k.job_cancel(job_id), 1)

    def cancelled(self, job_id: str) -> bool:
        return bool(self._r.exists(self._k.job_cancel(job_id)))

    # ---- events -------------------------------------------------------------------------------

    def publish(self, job_id: str, *, event: str | None = None) -> str:
        """Append the job's current record to its event stream and PUBLISH it; returns the id."""
        key = self._k.job(job_id)
        raw = self.raw(job_id)
        if event is None and raw["state"] in TERMINAL_STATES:
            return ""  # late work of an ended job: its terminal event was the last word
        if raw["state"] == "running":
            estimate = _progress_estimate(raw)
            self._raise_progress(keys=[key], args=[f"{estimate:.6f}"])
        record = self.record(job_id)
        record.pop("files")  # the stream carries progress; GET /ingest/status has the files
        name = event or ("progress" if record["state"] not in TERMINAL_STATES else record["state"])
        data = json.dumps(record)
        event_id = self._r.xadd(self._k.job_events(job_id), {"event": name, "data": data})
        self._r.publish(self._k.job_channel(job_id), event_id)
        return event_id.decode() if isinstance(event_id, bytes) else str(event_id)

    def events_after(self, job_id: str, last_id: str) -> list[tuple[str, str, str]]:
        """Events strictly after `last_id` ("0" for all), as (id, event, data)."""
        start = "-" if last_id in ("", "0") else f"({last_id}"
        entries = self._r.xrange(self._k.job_events(job_id), min=start, max="+")
        return [
            (eid.decode(), fields[b"event"].decode(), fields[b"data"].decode())
            for eid, fields in entries
        ]

    def live_channel(self, job_id: str) -> str:
        return self._k.job_channel(job_id)

    def iter_running(self) -> Iterator[str]:
        for job_id in self._r.zrevrange(self._k.jobs_index(), 0, 500):
            jid = job_id.decode()
            if self.field(jid, "state") in {"queued", "running"}:
                yield jid


def _float_or_none(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _progress_estimate(raw: dict[str, str]) -> float:
    files_total = float(raw.get("files_total", 0))
    if files_total <= 0:
        return 0.0
    units = files_total * _FILE_WEIGHT + float(raw.get("chunks_total", 0))
    done = float(raw.get("files_parsed", 0)) * _FILE_WEIGHT + float(
        raw.get("chunks_embedded", 0)
    )
    # Chunks of files not yet parsed are unknown: never claim more than parsing allows.
    return min(0.99, 0.98 * done / units) if units else 0.0


def _eta(progress: float, elapsed: float, state: str) -> float | None:
    if state != "running" or progress < 0.05 or elapsed <= 0:
        return None
    return round(elapsed * (1 - progress) / progress, 1)
