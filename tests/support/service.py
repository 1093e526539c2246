"""The live deployment the integration tests run against (see services/stack/live.py)."""

from services.stack.live import (  # noqa: F401 - re-exported for the tests
    REPO,
    SHARED_DATA,
    LiveService,
    RedisServer,
    free_port,
    wait_job,
)
