"""`rag up --llm`: a supervised llama.cpp server on loopback answers through the API, and
stops with everything else."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.data import unavailable
from tests.support.llama_server import llama_unavailable
from tests.support.service import REPO, free_port, wait_job

NOTE = (
    "# PaSa agents\n\nPaSa consists of two LLM agents, the Crawler and the Selector. The Crawler "
    "collects papers into a queue; the Selector decides whether each paper meets the query.\n"
)


def _processes_with_env(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def test_rag_up_llm_serves_answers_from_a_local_model(tmp_path: Path) -> None:
    unavailable(llama_unavailable())
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "pasa.md").write_text(NOTE, encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"HF_HUB_OFFLINE": "1", "RAG_TEST_MARKER": str(tmp_path),
                "RAG_LLM_MAX_TOKENS": "32", "RAG_LLM_FIRST_TOKEN_TIMEOUT_S": "120",
                "RAG_LLM_TOTAL_TIMEOUT_S": "240"})
    stderr_path = tmp_path / "up.err"
    with stderr_path.open("wb") as stderr:
        up = subprocess.Popen(
            [sys.executable, "-m", "services.cli.main", "up", "--port", str(port), "--workers",
             "1", "--data-dir", str(tmp_path / "data"), "--corpus-root", str(tmp_path),
             "--llm", "smollm2"],
            env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr,
        )
    try:
        deadline = time.monotonic() + 240
        while not _healthy(url):
            assert up.poll() is None, stderr_path.read_text()
            assert time.monotonic() < deadline, stderr_path.read_text()
            time.sleep(0.5)
        said = stderr_path.read_text()
        llm_url = re.search(r"llama\.cpp server .* at (http://127\.0\.0\.1:\d+)", said)
        assert llm_url, said
        assert httpx.get(f"{llm_url[1]}/health", timeout=5).status_code == 200
        with httpx.Client(base_url=url, timeout=300) as client:
            job = client.post("/ingest/start", json={"path": str(tmp_path / "notes"),
                                                     "corpus": "notes"}).json()
            assert wait_job(client, job["job_id"])["state"] == "succeeded"
            events = []
            with client.stream("POST", "/ask", json={"question": "What does the Crawler do?",
                                                     "corpus": "notes", "stream": True}) as resp:
                name = None
                for line in resp.iter_lines():
                    if line.startswith("event:"):
                        name = line.split(":", 1)[1].strip()
                    elif line.startswith("data:") and name:
                        events.append((name, json.loads(line.split(":", 1)[1])))
        final = events[-1][1]
        assert events[-1][0] == "final"
        assert (final["generator"], final["fallback"], final["abstained"]) == ("openai", False, False)
        assert sum(name == "token" for name, _ in events) >= 2
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    assert up.returncode == 0
    assert _processes_with_env(f"RAG_TEST_MARKER={tmp_path}") == []  # the llama server too
