"""`rag up`: everything starts from one command, a dead worker comes back, nothing outlives it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import redis

from tests.support.service import REPO, free_port


def _processes_with_env(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


def _health(url: str) -> dict | None:
    try:
        resp = httpx.get(f"{url}/health", timeout=5)
        return resp.json() if resp.status_code == 200 else None
    except httpx.HTTPError:
        return None


def _get_text(url: str) -> str | None:
    try:
        return httpx.get(url, timeout=2).text
    except httpx.HTTPError:
        return None


def _wait(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


def test_rag_up_supervises_and_stops_everything(tmp_path: Path) -> None:
    port, ui_port = free_port(), free_port()
    data_dir = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"HF_HUB_OFFLINE": "1", "RAG_TEST_MARKER": str(tmp_path)})
    stderr_path = tmp_path / "up.err"
    with stderr_path.open("wb") as stderr:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", "--port", str(port),
             "--data-dir", str(data_dir), "--workers", "1", "--corpus-root", str(tmp_path),
             "--ui-port", str(ui_port)],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        def worker_pids() -> list[int] | None:
            body = _health(url)
            if not body:
                return None
            pids = [w["pid"] for w in body["workers"]["live"] if w["name"].startswith("worker1:")]
            return pids or None

        first = _wait(worker_pids, 180, "the service to be healthy")
        redis_url = re.search(r"redis://[\d.]+:\d+", stderr_path.read_text()).group(0)
        # it says whether the API wants keys, and why
        assert "auth off: RAG_AUTH=auto and the API listens on loopback (127.0.0.1)" in (
            stderr_path.read_text()
        )
        assert redis.Redis.from_url(redis_url).ping()
        assert (data_dir / "store").exists()
        # the web UI is up too, and `rag up` printed where
        assert f"web UI on http://127.0.0.1:{ui_port}" in " ".join(stderr_path.read_text().split())
        _wait(lambda: _get_text(f"http://127.0.0.1:{ui_port}/_stcore/health") == "ok", 120,
              "the web UI to answer")

        # the worker's main process (the pool child's parent) dies: `rag up` starts a new one
        parent = int(Path(f"/proc/{first[0]}/stat").read_text().split()[3])
        os.kill(parent, signal.SIGKILL)
        _wait(lambda: (p := worker_pids()) and p[-1] not in first and p, 180,
              "the worker to be restarted")
        assert "restarting" in stderr_path.read_text()
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    assert up.returncode == 0
    assert _processes_with_env(f"RAG_TEST_MARKER={tmp_path}") == []
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=1).ping()
    assert _health(url) is None
