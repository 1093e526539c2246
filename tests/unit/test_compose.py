"""No Docker engine here: check the compose file's shape instead of running it."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def load() -> dict:
    return yaml.safe_load((REPO / "compose.yaml").read_text())


def test_services_and_images() -> None:
    services = load()["services"]
    assert set(services) == {"redis", "qdrant", "api", "worker"}
    assert services["redis"]["image"].startswith("redis:")
    assert services["qdrant"]["image"].startswith("qdrant/qdrant:")
    assert services["api"]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["worker"]["image"] == services["api"]["image"]
    assert (REPO / "deploy" / "Dockerfile").exists()


def test_worker_scales_without_fixed_names_or_ports() -> None:
    worker = load()["services"]["worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"][:2] == ["rag", "worker"]


def test_api_and_workers_share_redis_qdrant_and_volumes() -> None:
    services = load()["services"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["RAG_REDIS_URL"] == "redis://redis:6379/0"
        assert env["RAG_QDRANT_URL"] == "http://qdrant:6333"
        assert env["RAG_CORPUS_ROOT"] == "/corpus"
        mounts = {v.split(":")[1] for v in services[name]["volumes"]}
        assert {"/corpus", "/data"} <= mounts
        assert set(services[name]["depends_on"]) == {"redis", "qdrant"}


def test_persistent_volumes_for_state() -> None:
    data = load()
    assert {"redis-data", "qdrant-data", "rag-data", "corpus"} <= set(data["volumes"])
    assert any(v.startswith("qdrant-data:") for v in data["services"]["qdrant"]["volumes"])
    assert any(v.startswith("redis-data:") for v in data["services"]["redis"]["volumes"])
