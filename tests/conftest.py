"""Session-wide real servers. Unit tests need none of these."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.support.service import SHARED_DATA, RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_url() -> str:
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def shared_data():
    if not SHARED_DATA.exists():
        pytest.skip(f"test data not found: {SHARED_DATA} (clone ../shared beside the repo)")
    return SHARED_DATA
