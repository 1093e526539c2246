"""The cache-hit fast path accepts exactly the requests it can answer, and nothing else."""

from __future__ import annotations

import json

import pytest

from services.api.fastpath import _parse


def body(**fields: object) -> bytes:
    return json.dumps(fields).encode()


def test_a_plain_search_gets_the_documented_defaults() -> None:
    assert _parse("/search", body(query="graph neural networks")) == {
        "query": "graph neural networks", "corpus": "default", "top_k": 10,
        "use_cache": True, "mode": "hybrid",
    }
    assert _parse("/ask", body(question="How?", corpus="lab", top_k=3))["top_k"] == 3


@pytest.mark.parametrize(
    "path,raw",
    [
        ("/search", b"not json"),
        ("/search", b"[1, 2]"),
        ("/search", body(query="x", extra=1)),  # unknown field: FastAPI says which
        ("/search", body(query="x", top_k=True)),  # a bool is not a top_k
        ("/search", body(query="x", top_k="5")),
        ("/search", body(query="x", top_k=0)),
        ("/search", body(query="x", top_k=1001)),
        ("/search", body(query="x", mode="fuzzy")),
        ("/search", body(query="   ")),
        ("/search", body(query="x", corpus="../etc")),
        ("/search", body(query="x", use_cache=False)),
        ("/search", body(query="a\x00b")),
        ("/search", b'{"query": "a \\ud800"}'),  # a lone surrogate
        ("/ask", body(question="x", stream=True)),  # streams go to the route
        ("/ask", body(question="x", top_k=51)),
        ("/ask", body(query="x")),  # /ask takes a question
    ],
)
def test_anything_unusual_goes_on_to_fastapi(path: str, raw: bytes) -> None:
    assert _parse(path, raw) is None
