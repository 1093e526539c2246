"""Vector stores: one protocol (`base.VectorStore`), several implementations."""

from shared.vectors.store.base import ChunkPoint, SparseVector, StoredHit, VectorStore

__all__ = ["ChunkPoint", "SparseVector", "StoredHit", "VectorStore"]
