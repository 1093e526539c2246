"""Whether a Docker engine is usable here, for the tests that start containers."""

from __future__ import annotations

import os
from pathlib import Path


def docker_unavailable() -> str | None:
    """Why no Docker engine can be used here, or None. Answers within a few seconds."""
    host = os.environ.get("DOCKER_HOST")
    if not host and not Path("/var/run/docker.sock").exists():
        return "no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock does not exist"
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot use it"
        return f"Docker engine at {host or 'unix:///var/run/docker.sock'} unreachable: {exc}"
    return None
