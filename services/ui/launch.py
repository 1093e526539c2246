"""How the UI is started: the streamlit command line (`rag up` runs it) and the app's settings.

    python -m streamlit run services/ui/app.py --server.port 8501 --server.headless true \
        -- --api-url http://127.0.0.1:8000

The API address comes from `--api-url` after `--`, else RAG_API_URL; the API key from
RAG_API_KEY (sent as `Authorization: Bearer ...` when set).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

APP_PATH = Path(__file__).resolve().parent / "app.py"
DEFAULT_API_URL = "http://127.0.0.1:8000"
DEFAULT_PORT = 8501


@dataclass(frozen=True, slots=True)
class UiConfig:
    api_url: str
    api_key: str | None


def ui_command(api_url: str, port: int, *, host: str = "127.0.0.1") -> list[str]:
    """The command that serves the UI on `host:port`, talking to the API at `api_url`."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.port",
        str(port),
        "--server.address",
        host,
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",  # a served app, not a development session: no reloads, no inotify watches
        "--browser.gatherUsageStats",
        "false",  # no telemetry calls from an offline machine
        "--client.toolbarMode",
        "minimal",
        "--",
        "--api-url",
        api_url,
    ]


def ui_config(argv: Sequence[str], environ: Mapping[str, str] = os.environ) -> UiConfig:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--api-url", default=None)
    known, _ = parser.parse_known_args(list(argv))
    api_url = known.api_url or environ.get("RAG_API_URL") or DEFAULT_API_URL
    return UiConfig(api_url=api_url.rstrip("/"), api_key=environ.get("RAG_API_KEY") or None)
