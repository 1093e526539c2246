"""Settings: one source, and a misspelt variable is named with its closest valid name."""

from __future__ import annotations

import logging

import pytest

from shared.settings import ClientSettings, Settings, setting_names, warn_unknown_settings


def test_a_misspelt_setting_is_named_with_the_closest_valid_name(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        messages = warn_unknown_settings({"RAG_CHUNK_MAX_TOKEN": "100", "RAG_REDIS_URL": "x"})
    assert messages == [
        "RAG_CHUNK_MAX_TOKEN is not a rag-papers setting; did you mean RAG_CHUNK_MAX_TOKENS?"
    ]
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    assert "RAG_CHUNK_MAX_TOKEN " in caplog.text


def test_known_and_test_only_variables_are_not_warned_about() -> None:
    env = {name: "1" for name in setting_names()} | {"RAG_TEST_REDIS_URL": "redis://x"}
    assert warn_unknown_settings(env) == []


def test_every_variable_the_processes_read_is_a_setting() -> None:
    names = setting_names()
    for name in ("RAG_API_URL", "RAG_WORKER_NAME", "RAG_LOCAL_WORKERS", "RAG_HOST", "RAG_PORT",
                 "RAG_WORKERS", "RAG_REDIS_URL", "RAG_CHUNK_MAX_TOKENS"):
        assert name in names


def test_values_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_API_URL", "http://api.example:9000")
    monkeypatch.setenv("RAG_WORKER_NAME", "w7")
    monkeypatch.setenv("RAG_LOCAL_WORKERS", "3")
    assert ClientSettings().api_url == "http://api.example:9000"
    settings = Settings()
    assert (settings.worker_name, settings.local_workers) == ("w7", 3)
    assert settings.client.api_url == "http://api.example:9000"


def test_nonsense_is_refused_early(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_CHUNK_OVERLAP_TOKENS", "500")
    with pytest.raises(ValueError, match="RAG_CHUNK_OVERLAP_TOKENS"):
        Settings()
