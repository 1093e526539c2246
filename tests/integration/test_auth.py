"""API keys through the real stack: an API with RAG_AUTH=on, a worker, real Valkey."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.api import unique_corpus
from tests.support.service import REPO, LiveService, free_port, wait_job

ADMIN_KEY = f"admin-{secrets.token_urlsafe(24)}"
PAPER = """A Study of Retrieval for Question Answering

Dense retrieval encodes questions and passages into vectors and ranks passages by
similarity. Lexical retrieval with BM25 ranks passages by term overlap. Combining both
improves recall on scientific claims. We evaluate on a small collection of abstracts.
"""


@pytest.fixture(scope="module")
def issued() -> list[str]:
    """Every key this module saw, checked against the API log at the end."""
    return [ADMIN_KEY]


@pytest.fixture(scope="module")
def auth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("auth-root")
    for i in range(3):
        (root / f"paper{i}").mkdir()
        (root / f"paper{i}" / "study.txt").write_text(PAPER + f"\nCopy {i}.\n")
    return root


@pytest.fixture(scope="module")
def secured(redis_url: str, auth_root: Path, tmp_path_factory: pytest.TempPathFactory):
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("auth-data"),
        corpus_root=auth_root,
        workers=1,
        key_prefix=f"t{uuid.uuid4().hex[:6]}",
        env={
            "RAG_AUTH": "on",
            "RAG_ADMIN_KEY": ADMIN_KEY,
            "RAG_RATE_LIMIT_PER_S": "5",
            "RAG_RATE_LIMIT_BURST": "20",
            "RAG_TRUSTED_HOSTS": "127.0.0.1",
            "RAG_CORS_ORIGINS": "https://ui.example",
            "PYTHONUNBUFFERED": "1",  # the log test reads everything the API wrote
        },
    )
    live.start()
    yield live
    live.stop()


def client(service: LiveService, key: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=service.url, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def admin(secured: LiveService):
    with client(secured, ADMIN_KEY) as c:
        yield c


def new_key(admin: httpx.Client, issued: list[str], role: str, corpora: list[str] | None = None):
    body: dict = {"role": role, "name": f"{role} {uuid.uuid4().hex[:4]}"}
    if corpora is not None:
        body["corpora"] = corpora
    resp = admin.post("/keys", json=body)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    issued.append(created["key"])
    return created


def rag(service: LiveService, *args: str, key: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_API_URL": service.url, "HF_HUB_OFFLINE": "1"})
    if key:
        env["RAG_API_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "services.cli.main", *args],
        env=env,
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_a_key_only_health_answers_and_it_says_only_the_status(
    secured: LiveService, admin: httpx.Client
) -> None:
    with client(secured) as anonymous:
        for method, path, body in [
            ("GET", "/corpora", None),
            ("POST", "/search", {"query": "retrieval", "corpus": "x"}),
            ("POST", "/ask", {"question": "what?", "corpus": "x"}),
            ("GET", "/ingest/list", None),
            ("GET", "/cache/stats", None),
            ("GET", "/keys", None),
        ]:
            resp = anonymous.request(method, path, json=body)
            assert resp.status_code == 401, (path, resp.text)
            assert resp.json()["error"] == "unauthorized"
            assert "Authorization: Bearer KEY" in resp.json()["detail"]
            assert resp.headers["www-authenticate"] == "Bearer"
        health = anonymous.get("/health")
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        bad = anonymous.get("/corpora", headers={"Authorization": "Bearer rag_0123456789ab_nope"})
        assert bad.status_code == 401 and "unknown or revoked" in bad.json()["detail"]
    detailed = admin.get("/health").json()
    assert detailed["status"] == "ok" and detailed["workers"]["live"]


def test_admin_creates_lists_masked_and_revokes_keys(
    secured: LiveService, admin: httpx.Client, issued: list[str]
) -> None:
    created = new_key(admin, issued, "reader", ["papers"])
    assert created["key"].startswith(f"rag_{created['id']}_")
    assert (created["role"], created["corpora"]) == ("reader", ["papers"])
    listing = admin.get("/keys")
    assert listing.status_code == 200
    row = next(k for k in listing.json()["keys"] if k["id"] == created["id"])
    assert row["masked"] == f"rag_{created['id']}_********"
    assert created["key"] not in listing.text and "digest" not in listing.text
    with client(secured, created["key"]) as reader:
        assert reader.get("/corpora").status_code == 200
        assert reader.get("/keys").status_code == 403  # keys are for admins
        revoked = admin.delete(f"/keys/{created['id']}")
        assert revoked.status_code == 200 and revoked.json()["id"] == created["id"]
        after = reader.get("/corpora")
        assert after.status_code == 401 and "unknown or revoked" in after.json()["detail"]
    assert admin.delete(f"/keys/{created['id']}").status_code == 404
    assert created["id"] not in {k["id"] for k in admin.get("/keys").json()["keys"]}


def test_the_cli_sends_rag_api_key(secured: LiveService, issued: list[str]) -> None:
    made = rag(
        secured,
        "keys",
        "create",
        "--role",
        "writer",
        "--name",
        "cli bot",
        "--corpus",
        "cli-a",
        "--json",
        key=ADMIN_KEY,
    )
    assert made.returncode == 0, made.stderr
    created = json.loads(made.stdout)
    issued.append(created["key"])
    listed = rag(secured, "keys", "list", "--json", key=ADMIN_KEY)
    assert listed.returncode == 0, listed.stderr
    rows = {r["id"]: r for r in json.loads(listed.stdout)["keys"]}
    assert rows[created["id"]]["corpora"] == ["cli-a"] and created["key"] not in listed.stdout
    corpora = rag(secured, "corpora", "--json", key=created["key"])
    assert corpora.returncode == 0, corpora.stderr
    assert rag(secured, "keys", "list", key=created["key"]).returncode == 2  # a writer: 403
    revoked = rag(secured, "keys", "revoke", created["id"], key=ADMIN_KEY)
    assert revoked.returncode == 0 and created["id"] in revoked.stdout
    refused = rag(secured, "corpora", key=created["key"])
    assert refused.returncode == 2 and "unknown or revoked API key" in refused.stderr
    missing = rag(secured, "corpora", key=None)
    assert missing.returncode == 2 and "missing API key" in missing.stderr


def test_wrong_role_or_corpus_is_403(
    secured: LiveService, admin: httpx.Client, issued: list[str], auth_root: Path
) -> None:
    reader = new_key(admin, issued, "reader", ["only-this"])
    writer = new_key(admin, issued, "writer", ["mine"])
    with client(secured, reader["key"]) as r, client(secured, writer["key"]) as w:
        denied = r.post(
            "/ingest/start", json={"path": str(auth_root / "paper0"), "corpus": "only-this"}
        )
        assert denied.status_code == 403
        assert denied.json() == {
            "error": "forbidden",
            "detail": f"key '{reader['id']}' is a reader key; this request needs a writer key",
        }
        other = r.post("/search", json={"query": "retrieval", "corpus": "elsewhere"})
        assert (
            other.status_code == 403 and "may not use corpus 'elsewhere'" in other.json()["detail"]
        )
        assert (
            r.post("/search", json={"query": "retrieval", "corpus": "only-this"}).status_code == 200
        )
        assert r.post("/ask", json={"question": "why?", "corpus": "elsewhere"}).status_code == 403
        outside = w.post(
            "/ingest/start", json={"path": str(auth_root / "paper0"), "corpus": "theirs"}
        )
        assert outside.status_code == 403 and "'theirs'" in outside.json()["detail"]
        upload = w.post(
            "/ingest/upload", data={"corpus": "theirs"}, files={"files": ("a.txt", PAPER.encode())}
        )
        assert upload.status_code == 403
        assert w.delete("/cache/all").status_code == 403
        assert admin.delete("/cache/answers").status_code == 200
        # X-API-Key works as well as Authorization: Bearer
        by_header = httpx.get(f"{secured.url}/corpora", headers={"X-API-Key": reader["key"]})
        assert by_header.status_code == 200


def test_jobs_are_seen_by_their_owners_and_their_corpora(
    secured: LiveService, admin: httpx.Client, issued: list[str], auth_root: Path
) -> None:
    corpus_a, corpus_b = unique_corpus("a"), unique_corpus("b")
    writer_a = new_key(admin, issued, "writer", [corpus_a])
    writer_b = new_key(admin, issued, "writer", [corpus_b])
    reader = new_key(admin, issued, "reader")
    with (
        client(secured, writer_a["key"]) as wa,
        client(secured, writer_b["key"]) as wb,
        client(secured, reader["key"]) as r,
    ):
        job_a = wa.post(
            "/ingest/start", json={"path": str(auth_root / "paper1"), "corpus": corpus_a}
        )
        job_b = wb.post(
            "/ingest/start", json={"path": str(auth_root / "paper2"), "corpus": corpus_b}
        )
        assert job_a.status_code == job_b.status_code == 202, (job_a.text, job_b.text)
        id_a, id_b = job_a.json()["job_id"], job_b.json()["job_id"]
        record_a = wait_job(wa, id_a, timeout_s=300)
        assert record_a["state"] == "succeeded" and record_a["owner"] == writer_a["id"]

        def listed(c: httpx.Client) -> set[str]:
            resp = c.get("/ingest/list", params={"limit": 1000})
            assert resp.status_code == 200, resp.text
            return {j["job_id"] for j in resp.json()["jobs"]}

        assert id_a in listed(wa) and id_b not in listed(wa)
        assert id_b in listed(wb) and id_a not in listed(wb)
        assert not {id_a, id_b} & listed(r)  # a reader sees its own jobs only: none
        assert {id_a, id_b} <= listed(admin)
        assert r.get(f"/ingest/status/{id_a}").status_code == 403
        assert wb.get(f"/ingest/status/{id_a}").status_code == 403
        assert wb.get(f"/ingest/events/{id_a}").status_code == 403
        assert wb.post(f"/ingest/cancel/{id_a}").status_code == 403
        assert wb.post(f"/ingest/retry/{id_a}").status_code == 403
        retried = wa.post(f"/ingest/retry/{id_a}")
        assert retried.status_code == 202
        assert (
            wa.get(f"/ingest/status/{retried.json()['job_id']}").json()["owner"] == writer_a["id"]
        )
        # corpora: a scoped key lists only its own
        names = {c["name"] for c in wa.get("/corpora").json()["corpora"]}
        assert names == {corpus_a}
        assert corpus_a in {c["name"] for c in admin.get("/corpora").json()["corpora"]}


def test_events_stream_with_auth_on(
    secured: LiveService, admin: httpx.Client, issued: list[str], auth_root: Path
) -> None:
    corpus = unique_corpus("sse")
    writer = new_key(admin, issued, "writer", [corpus])
    with client(secured, writer["key"]) as w:
        resp = w.post("/ingest/start", json={"path": str(auth_root / "paper0"), "corpus": corpus})
        assert resp.status_code == 202, resp.text
        job_id = resp.json()["job_id"]
        with client(secured) as anonymous:
            assert anonymous.get(f"/ingest/events/{job_id}").status_code == 401
        names: list[str] = []
        with w.stream("GET", f"/ingest/events/{job_id}", timeout=httpx.Timeout(300)) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            for line in stream.iter_lines():
                if line.startswith("event:"):
                    names.append(line.partition(":")[2].strip())
                    if names[-1] in ("succeeded", "failed", "cancelled"):
                        break
        assert names[-1] == "succeeded", names
        assert names.count("progress") >= 2  # more than one event arrived before the end


def test_over_the_rate_limit_is_429_with_retry_after(
    secured: LiveService, admin: httpx.Client, issued: list[str]
) -> None:
    reader = new_key(admin, issued, "reader")
    with client(secured, reader["key"]) as r:
        codes = []
        for _ in range(40):
            resp = r.get("/corpora")
            codes.append(resp.status_code)
            if resp.status_code == 429:
                limited = resp
                break
        assert codes[:20] == [200] * 20, codes  # the burst
        assert codes[-1] == 429, codes
        assert limited.json()["error"] == "rate_limited"
        assert "RAG_RATE_LIMIT_PER_S=5" in limited.json()["detail"]
        assert int(limited.headers["retry-after"]) >= 1
        # another key has its own bucket
        assert admin.get("/corpora").status_code == 200
        deadline = time.monotonic() + 5
        while r.get("/corpora").status_code == 429:
            assert time.monotonic() < deadline, "the bucket never refilled"
            time.sleep(0.1)
        assert admin.get("/health").status_code == 200  # probes are never limited


def test_cache_hits_keep_the_http_policy(
    secured: LiveService, admin: httpx.Client, issued: list[str], auth_root: Path
) -> None:
    """Cache hits are answered ahead of the middleware (services/api/fastpath.py), and still
    get what it gives every response: trusted hosts, CORS, request ids, the rate limit."""
    corpus = unique_corpus("hits")
    done = admin.post("/ingest/start", json={"path": str(auth_root / "paper1"), "corpus": corpus})
    assert done.status_code == 202, done.text
    assert wait_job(admin, done.json()["job_id"], timeout_s=300)["state"] == "succeeded"
    reader = new_key(admin, issued, "reader", [corpus])
    body = {"query": "dense retrieval of passages", "corpus": corpus, "top_k": 3}
    with client(secured, reader["key"]) as r:
        first = r.post("/search", json=body)
        assert first.status_code == 200 and first.json()["cache_info"]["retrieval_hit"] is False
        hit = r.post("/search", json=body, headers={"X-Request-ID": "trace-42"})
        assert hit.json()["cache_info"]["retrieval_hit"] is True
        assert hit.json()["results"] == first.json()["results"]
        assert hit.headers["x-request-id"] == "trace-42"
        assert len(r.post("/search", json=body).headers["x-request-id"]) == 32  # a new one
        refused = r.post("/search", json=body, headers={"Host": "attacker.example"})
        assert (refused.status_code, refused.text) == (400, "Invalid host header")
        cors = r.post("/search", json=body, headers={"Origin": "https://ui.example"})
        assert cors.json()["cache_info"]["retrieval_hit"] is True
        assert cors.headers["access-control-allow-origin"] == "https://ui.example"
        for _ in range(40):  # the burst of 20, then the limit, on hits as on anything else
            limited = r.post("/search", json=body)
            if limited.status_code == 429:
                break
        assert limited.status_code == 429, limited.text
        assert "RAG_RATE_LIMIT_PER_S=5" in limited.json()["detail"]
        assert int(limited.headers["retry-after"]) >= 1 and limited.headers["x-request-id"]


def test_no_key_ever_appears_in_the_api_log(
    secured: LiveService, admin: httpx.Client, issued: list[str]
) -> None:
    """Runs last against the service: every key issued in this module, and the admin key."""
    reader = new_key(admin, issued, "reader", ["logged"])
    with client(secured, reader["key"]) as r:
        assert r.get("/corpora").status_code == 200
        assert r.post("/search", json={"query": "q", "corpus": "other"}).status_code == 403
        assert r.get("/keys").status_code == 403
    admin.delete(f"/keys/{reader['id']}")
    with client(secured, reader["key"]) as revoked:
        assert revoked.get("/corpora").status_code == 401
    log = (secured.logs / "api.log").read_text(errors="replace")
    assert "auth on: RAG_AUTH=on" in log
    assert ADMIN_KEY not in log
    for key in issued[1:]:
        secret = key.split("_", 2)[2]  # rag_<id>_<secret>
        assert len(secret) == 43 and secret not in log


def test_the_api_refuses_to_start_with_auth_on_and_no_admin_key(
    redis_url: str, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update(
        {
            "HF_HUB_OFFLINE": "1",
            "RAG_AUTH": "on",
            "RAG_REDIS_URL": redis_url,
            "RAG_DATA_DIR": str(tmp_path),
        }
    )
    serve = subprocess.run(
        [sys.executable, "-m", "services.cli.main", "serve", "--port", str(free_port())],
        env=env,
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert serve.returncode == 2
    assert "auth is on (RAG_AUTH=on) but RAG_ADMIN_KEY is not set" in serve.stderr
    assert "export RAG_ADMIN_KEY=" in serve.stderr
    # `rag up` on a non-loopback address says so before starting anything
    del env["RAG_AUTH"]
    up = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli.main",
            "up",
            "--host",
            "0.0.0.0",
            "--port",
            str(free_port()),
            "--data-dir",
            str(tmp_path / "up"),
            "--workers",
            "0",
        ],
        env=env,
        check=False,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert up.returncode == 2
    assert "RAG_AUTH=auto and the API listens on 0.0.0.0, not loopback" in up.stderr
    assert "RAG_ADMIN_KEY is not set" in up.stderr
    assert not (tmp_path / "up").exists()  # nothing was started
