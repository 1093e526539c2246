"""Session-wide real servers. Unit tests need none of these."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.support.data import SHARED_DATA, require  # noqa: E402
from tests.support.service import RedisServer  # noqa: E402


@pytest.fixture(scope="session")
def redis_url() -> str:
    server = RedisServer().start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def shared_data():
    return require(SHARED_DATA)


# Fixtures that start or need a live server: a test using any of them is an integration test.
_LIVE_FIXTURES = {"redis_url", "service", "api", "res"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests under tests/integration and tests/browser, and any test that uses a live server
    fixture, are marked `integration`; `make test-fast` runs everything else."""
    for item in items:
        path = str(item.path)
        live = _LIVE_FIXTURES & set(getattr(item, "fixturenames", ()))
        if "/tests/integration/" in path or "/tests/browser/" in path or live:
            item.add_marker(pytest.mark.integration)
