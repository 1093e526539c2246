"""The clients a process needs, built once at its entry point and passed down.

Heavy parts (the model, the store) are built on first use, so a process that never embeds
or never touches the store (an embedded-mode worker) never loads them.
"""

from __future__ import annotations

import hashlib
import threading
from functools import cached_property
from typing import TYPE_CHECKING

import redis

from shared.keys import Keys
from shared.settings import Settings
from shared.state.catalog import Catalog
from shared.state.jobs import JobStore

if TYPE_CHECKING:
    from pathlib import Path

    from shared.cache import EmbeddingCache
    from shared.chunking import Chunker
    from shared.vectors.bm25 import Bm25Encoder
    from shared.vectors.embedding import Embedder
    from shared.vectors.store import VectorStore


def connect_redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, health_check_interval=30, socket_keepalive=True)


class Resources:
    def __init__(self, settings: Settings, *, torch_threads: int = 0) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        # Two roles: the broker (queues, jobs, catalog: persistent, never evicts) and the
        # cache tiers (LRU, disposable). One server unless RAG_CACHE_REDIS_URL says otherwise.
        self.redis = connect_redis(settings.redis_url)
        self.cache_redis = (
            self.redis
            if settings.cache_redis_url == settings.redis_url
            else connect_redis(settings.cache_redis_url)
        )
        self.jobs = JobStore(
            self.redis,
            self.keys,
            retention_s=settings.jobs.retention_days * 86400,
            redelivery_s=settings.jobs.redelivery_s,
            restore_interval_s=settings.jobs.restore_interval_s,
        )
        self.catalog = Catalog(self.redis, self.keys)
        self._torch_threads = torch_threads
        self._lock = threading.Lock()
        # Held by every task that writes the store and the catalog, and by a backup, which
        # so sees the two agree (in embedded mode this process is their only writer).
        self.store_writes = threading.Lock()

    @cached_property
    def embedder(self) -> Embedder:
        """The embedding backend RAG_EMBED_BACKEND names (ONNX Runtime or torch): the same
        model identity and the same vectors either way."""
        from shared.vectors.embedding import Embedder

        e = self.settings.embedding
        with self._lock:
            if e.backend == "onnx":
                from shared.vectors.onnx_embedder import OnnxEmbedder

                return OnnxEmbedder(  # type: ignore[return-value]
                    e.model_path,
                    cache_dir=self._onnx_cache_dir,
                    threads=self._torch_threads,
                    batch_size=e.batch_size,
                )
            return Embedder(e.model_path, threads=self._torch_threads, batch_size=e.batch_size)

    @cached_property
    def sentence_embedder(self) -> Embedder:
        """What ranks an extractive answer's candidate sentences against the question: the
        model's int8 quantization with ONNX and RAG_EXTRACTIVE_INT8 (its own model id, so its
        vectors are cached apart), else the embedder itself."""
        e = self.settings.embedding
        if e.backend != "onnx" or not self.settings.generation.extractive_int8:
            return self.embedder
        from shared.vectors.onnx_embedder import OnnxEmbedder

        with self._lock:
            return OnnxEmbedder(  # type: ignore[return-value]
                e.model_path,
                cache_dir=self._onnx_cache_dir,
                threads=self._torch_threads,
                batch_size=e.batch_size,
                quantized=True,
            )

    @property
    def _onnx_cache_dir(self) -> Path:
        return self.settings.embedding.onnx_cache_dir or self.settings.data_dir.resolve() / "models"

    @cached_property
    def embedding_cache(self) -> EmbeddingCache:
        return self._embedding_cache_of(self.embedder)

    @cached_property
    def sentence_embedding_cache(self) -> EmbeddingCache:
        if self.sentence_embedder is self.embedder:
            return self.embedding_cache
        return self._embedding_cache_of(self.sentence_embedder)

    def _embedding_cache_of(self, embedder: Embedder) -> EmbeddingCache:
        from shared.cache import EmbeddingCache

        return EmbeddingCache(
            self.cache_redis,
            self.keys,
            model_id=embedder.model_id,
            dim=embedder.dim,
            ttl_s=self.settings.cache.embedding_ttl_s,
        )

    @cached_property
    def chunker(self) -> Chunker:
        from shared.chunking import Chunker
        from shared.vectors.embedding import default_model_path

        path = self.settings.embedding.model_path or default_model_path()
        return Chunker.from_model_path(
            path,
            max_tokens=self.settings.chunking.max_tokens,
            overlap_tokens=self.settings.chunking.overlap_tokens,
            context_tokens=self.settings.chunking.lexical_context_tokens,
        )

    @cached_property
    def bm25(self) -> Bm25Encoder:
        from shared.vectors.bm25 import Bm25Encoder

        return Bm25Encoder(self.settings.bm25)

    @cached_property
    def store(self) -> VectorStore:
        from shared.vectors.store.factory import open_store

        return open_store(self.settings)

    @cached_property
    def chunking_signature(self) -> str:
        """Changes whenever chunk boundaries or what is stored per chunk would change."""
        from shared.vectors.embedding import default_model_path, model_identity

        s = self.settings
        parts = [
            model_identity(s.embedding.model_path or default_model_path()),
            s.chunking.max_tokens,
            s.chunking.overlap_tokens,
            s.chunking.lexical_context_tokens,
            s.bm25.k1,
            s.bm25.b,
            s.bm25.avg_len,
            s.bm25.stemmer,
            s.bm25.stopwords,
            # v2: a chunk's vector embeds the document's title, then the chunk text;
            # v3: its BM25 vector reads the chunk with its lexical context
            "v3",
        ]
        return hashlib.sha256(repr(parts).encode()).hexdigest()[:16]

    def close(self) -> None:
        if "store" in self.__dict__:
            self.store.close()
        if self.cache_redis is not self.redis:
            self.cache_redis.close()
        self.redis.close()
