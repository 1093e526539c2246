"""The shared test data (../shared/data beside the repo) and what happens when it is missing.

Locally a missing folder skips the tests that need it, with the reason. In CI (`CI=true`) the
data is part of the contract: a missing folder fails the run at once with a clear message, so
a green CI can never be a suite that skipped its real tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.stack.live import SHARED_DATA

PAPERS = SHARED_DATA / "papers"
SCIFACT = SHARED_DATA / "scifact"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing_message(path: Path) -> str:
    return f"test data not found: {path} (clone the shared folder beside the repo as ../shared)"


def require(path: Path) -> Path:
    """`path` if it exists; otherwise skip (locally) or fail the whole run (CI)."""
    if path.exists():
        return path
    if in_ci():
        pytest.exit(missing_message(path) + "; CI=true makes this an error", returncode=3)
    pytest.skip(missing_message(path))


def unavailable(reason: str | None) -> None:
    """Skip (locally) or fail (CI) when something a test needs is missing; None: go on."""
    if reason is None:
        return
    if in_ci():
        pytest.fail(f"{reason}; CI=true makes this an error (`make test` installs it)")
    pytest.skip(reason)
