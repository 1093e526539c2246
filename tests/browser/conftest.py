"""A live stack (Valkey, API, one worker), the Streamlit UI on a free port, and Debian's
Chromium driven by Playwright. Screenshots go to tests/browser/artifacts/ (git-ignored)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.ui.launch import ui_command
from tests.support.data import require, unavailable
from tests.support.service import REPO, SHARED_DATA, LiveService, free_port

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
PAPERS = SHARED_DATA / "papers"


def chromium_path() -> str | None:
    return (
        os.environ.get("RAG_TEST_CHROMIUM")
        or shutil.which("chromium")
        or shutil.which("chromium-browser")
    )


@pytest.fixture(scope="session")
def papers() -> Path:
    return require(PAPERS)


@pytest.fixture(scope="session")
def stack(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("ui-data"),
        corpus_root=tmp_path_factory.mktemp("ui-root"),
        workers=1,
        key_prefix=f"ui{uuid.uuid4().hex[:6]}",
    )
    live.start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def api(stack: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=120) as client:
        yield client


@pytest.fixture(scope="session")
def ui_url(stack: LiveService) -> Iterator[str]:
    """`streamlit run services/ui/app.py`, as `rag up` starts it, pointed at the live API."""
    port = free_port()
    log = (stack.logs / "ui.log").open("ab")
    proc = subprocess.Popen(
        ui_command(stack.url, port),
        cwd=REPO,
        env={**stack.env, "RAG_API_URL": stack.url},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited: {stack.tail('ui')}")
        try:
            if httpx.get(f"{url}/_stcore/health", timeout=5).text == "ok":
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"streamlit not up after 60 s: {stack.tail('ui')}")
        time.sleep(0.3)
    yield url
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@pytest.fixture(scope="module")  # closed after each module: its event loop must not outlive it
def browser() -> Iterator[Any]:
    executable = chromium_path()
    if executable is None:
        unavailable(
            "no Chromium: apt-get install chromium (make test does), or set RAG_TEST_CHROMIUM"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def artifacts(request: pytest.FixtureRequest) -> Path:
    folder = ARTIFACTS / request.module.__name__.rsplit(".", 1)[-1]
    folder.mkdir(parents=True, exist_ok=True)
    return folder
