"""Chooses the vector store from settings: a Qdrant server if configured, else an embedded one."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.settings import Settings
    from shared.vectors.store.base import VectorStore


def open_store(settings: Settings) -> VectorStore:
    """`RAG_QDRANT_URL` set: that server. Unset: qdrant-edge (default) or qdrant-client local
    mode under `settings.store_dir`, owned by the calling process alone."""
    qdrant = settings.qdrant
    if qdrant.url is not None:
        from qdrant_client import QdrantClient

        from shared.vectors.store.qdrant import QdrantStore

        return QdrantStore(QdrantClient(url=qdrant.url, api_key=qdrant.api_key))
    if qdrant.local_engine == "edge":
        from shared.vectors.store.edge import EdgeStore

        return EdgeStore(
            settings.store_dir / "edge",
            hnsw_m=qdrant.hnsw_m,
            hnsw_ef_construct=qdrant.hnsw_ef_construct,
            hnsw_ef=qdrant.hnsw_ef,
        )
    if qdrant.local_engine == "client":
        from qdrant_client import QdrantClient

        from shared.vectors.store.qdrant import QdrantStore

        path = settings.store_dir / "qdrant-local"
        path.mkdir(parents=True, exist_ok=True)
        return QdrantStore(QdrantClient(path=str(path)))
    raise ValueError(f"unknown RAG_QDRANT_LOCAL_ENGINE {qdrant.local_engine!r}")
