"""The house rules of the layout, checked on the source: imports run one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# Rooms of shared/, lowest first. A module may import its own room and lower ranks only.
RANKS = {
    # ground floor: the plain modules first, then what builds on them
    "settings": 0, "errors": 0, "keys": 0, "direct_script": 0,
    "identity": 0.5, "documents": 0.5,
    "chunking": 0.8, "parsing": 0.8,
    # metrics and logs: on the ground floor only, and below every room that records them
    # (generation counts its LLM requests)
    "telemetry": 0.9,
    # rooms that stand on the ground floor only
    "vectors": 1, "cache": 1, "state": 1, "generation": 1, "auth": 1,
    # the wiring of one process's clients
    "resources": 2,
    # what the services do with them
    "ingest": 3, "search": 3, "backup": 3,
    # Celery: the app, task bindings, heartbeat, stall watchdog
    "tasks": 4,
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _room(module: str) -> str:
    return module.split(".")[1]


def _python_files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_every_shared_module_lives_in_a_known_room() -> None:
    rooms = {p.relative_to(REPO / "shared").parts[0].removesuffix(".py")
             for p in _python_files("shared")} - {"__init__"}
    assert rooms <= set(RANKS), f"rooms without a rank: {sorted(rooms - set(RANKS))}"


@pytest.mark.parametrize("path", _python_files("shared"), ids=lambda p: str(p.relative_to(REPO)))
def test_shared_imports_run_one_way(path: Path) -> None:
    parts = path.relative_to(REPO / "shared").parts
    if parts == ("__init__.py",):
        return
    here = parts[0].removesuffix(".py")
    for module in _imports(path):
        assert not module.startswith("services"), f"{path.name} imports {module}"
        if not module.startswith("shared."):
            continue
        there = _room(module)
        assert there == here or RANKS[there] < RANKS[here], (
            f"shared/{'/'.join(parts)} ({here}, rank {RANKS[here]}) imports {module} "
            f"({there}, rank {RANKS[there]})"
        )


def test_services_api_and_worker_never_import_each_other() -> None:
    for side, other in (("api", "worker"), ("worker", "api")):
        for path in _python_files(f"services/{side}"):
            bad = [m for m in _imports(path) if m.startswith(f"services.{other}")]
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_the_ui_talks_to_the_api_over_http_only() -> None:
    for path in _python_files("services/ui"):
        bad = [m for m in _imports(path) if m.startswith(("services.api", "services.worker", "shared"))]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_bench_does_not_import_tests() -> None:
    for path in _python_files("bench"):
        bad = [m for m in _imports(path) if m == "tests" or m.startswith("tests.")]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_no_test_module_imports_another() -> None:
    for path in _python_files("tests"):
        bad = [
            m for m in _imports(path)
            if m.startswith("tests.") and not m.startswith("tests.support")
        ]
        assert not bad, f"{path.relative_to(REPO)} imports {bad}: move shared helpers to tests/support"
