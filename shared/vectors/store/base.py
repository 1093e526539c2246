"""The vector store protocol every implementation honours (see tests/contract)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from shared.identity import CORPUS_NAME, CORPUS_NAME_RULE


def checked_corpus(corpus: str) -> str:
    """The name becomes a directory or a collection: refuse anything else."""
    if not CORPUS_NAME.fullmatch(corpus):
        raise ValueError(f"invalid corpus name {corpus!r}: use {CORPUS_NAME_RULE}")
    return corpus


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class ChunkPoint:
    """What is written for one chunk: its id, dense and BM25 vectors, and its payload.

    `payload` carries at least: corpus, doc_id, chunk_index, text, page, char_start, char_end,
    title, source, external_id.
    """

    id: str  # a UUID string, derived deterministically (see shared/identity.py)
    dense: list[float]
    sparse: SparseVector
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class StoredHit:
    id: str
    score: float
    payload: dict[str, Any]


# The payload keys a search returns with each hit; None: the whole payload, (): none.
# Candidate lists (hundreds of hits, of which a page is shown) ask for what ranking reads, or
# nothing (shared/search/chunk_documents.py), then `payloads` for the page.
Fields = Sequence[str] | None


@runtime_checkable
class VectorStore(Protocol):
    """One collection per corpus. Dense cosine + sparse BM25 (IDF applied by the store)."""

    def ensure_corpus(self, corpus: str, *, dim: int) -> None: ...

    def upsert(self, corpus: str, points: Sequence[ChunkPoint]) -> None: ...

    def delete_documents(self, corpus: str, doc_ids: Sequence[str]) -> None: ...

    def search_dense(
        self, corpus: str, vector: Sequence[float], *, limit: int, fields: Fields = None
    ) -> list[StoredHit]: ...

    def search_sparse(
        self, corpus: str, vector: SparseVector, *, limit: int, fields: Fields = None
    ) -> list[StoredHit]: ...

    def payloads(
        self, corpus: str, ids: Sequence[str], *, fields: Fields = None
    ) -> dict[str, dict[str, Any]]:
        """The payload (or its `fields`) of each of `ids` that exists."""
        ...

    def count(self, corpus: str, *, doc_id: str | None = None) -> int: ...

    def doc_ids(self, corpus: str) -> set[str]: ...

    def corpora(self) -> list[str]: ...

    def drop_corpus(self, corpus: str) -> None: ...

    def healthy(self) -> bool: ...

    def close(self) -> None: ...
