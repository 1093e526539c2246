"""The published contract holds: schemathesis drives every route from /openapi.json against a
live deployment and checks each response (no 5xx, status codes and bodies as documented,
content types and headers, invalid input refused, valid input accepted).

Covered by their own tests instead: POST /ingest/upload (multipart streamed by the route,
tests/integration/test_safety.py and test_ingestion.py) and GET /ingest/events/{job_id} (a
never-ending event stream, tests/integration/test_jobs.py).

A deployment of its own with an empty corpus root: generated requests start jobs, cancel
them and purge caches, which must not touch the session's shared service.
"""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support.service import LiveService

ADMIN_KEY = "contract-admin-key-0123456789"

# Every check schemathesis has. /ingest/start may refuse a schema-valid path with a 400
# naming it (the schema cannot know which files the server has), so there a 400 counts as
# an acceptable answer to valid data.
CONFIG = """
[checks]
enabled = true

[[operations]]
include-path = "/ingest/start"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "400", "404", "409"]
"""


@pytest.fixture(scope="module")
def contract_service(redis_url: str, tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("contract-root")
    (root / "notes").mkdir()
    (root / "notes" / "tides.txt").write_text("The moon's gravity raises the tides twice a day.")
    live = LiveService(
        redis_url=redis_url,
        data_dir=tmp_path_factory.mktemp("contract-data"),
        corpus_root=root,
        workers=1,
        key_prefix=f"ct{uuid.uuid4().hex[:6]}",
        # auth on: schemathesis also checks that a request without a key, or with a wrong
        # one, is refused wherever the schema says a key is needed
        env={"RAG_AUTH": "on", "RAG_ADMIN_KEY": ADMIN_KEY},
    )
    live.start()
    yield live
    live.stop()


def test_every_route_keeps_the_published_contract(
    contract_service: LiveService, tmp_path: Path
) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [
            sys.executable, "-m", "schemathesis.cli", "--config-file", str(config), "--no-color",
            "run", f"{contract_service.url}/openapi.json",
            "--header", f"Authorization: Bearer {ADMIN_KEY}",
            "--exclude-path", "/ingest/upload",
            "--exclude-path-regex", "^/ingest/events/",
            "--max-examples", "30",
            "--seed", "20261130",
            "--workers", "1",
            "--request-timeout", "60",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, f"{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    summary = run.stdout[run.stdout.rfind("SUMMARY"):]
    selected = re.search(r"Selected: (\d+)/\d+", summary)
    tested = re.search(r"Tested: (\d+)", summary)
    cases = re.search(r"(\d+) generated, (\d+) passed", summary)
    assert selected and tested and cases, summary
    assert tested.group(1) == selected.group(1), summary  # every selected route was reached
    assert cases.group(1) == cases.group(2), summary


def test_the_contract_documents_errors_on_every_route(contract_service: LiveService) -> None:
    spec = httpx.get(f"{contract_service.url}/openapi.json", timeout=30).json()
    probes = {"/health", "/health/live", "/metrics"}  # no input: no 400/422 to document
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            documented = set(operation["responses"])
            where = f"{method.upper()} {path}"
            assert "500" in documented, where
            if path not in probes:
                assert {"400", "413", "422", "503"} <= documented, where
            for code in (c for c in documented if not c.startswith("2")):
                content = operation["responses"][code].get("content", {})
                schema_ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
                wanted = "HealthReport" if (path, code) == ("/health", "503") else "ErrorBody"
                assert schema_ref.endswith(wanted), (where, code, schema_ref)


def test_405_names_every_allowed_method(contract_service: LiveService) -> None:
    for path, allowed in (("/search", "POST"), ("/keys", "GET, POST")):
        resp = httpx.put(f"{contract_service.url}{path}", timeout=30)
        assert resp.status_code == 405
        assert resp.headers["allow"] == allowed
        assert resp.json()["error"] == "method_not_allowed"
