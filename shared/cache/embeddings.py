"""The embedding tier: model identity + text hash -> float32 bytes, shared by every process."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import redis

from shared.cache.stats import CacheStats
from shared.identity import text_hash
from shared.keys import Keys


@dataclass(frozen=True, slots=True)
class EmbedOutcome:
    vectors: np.ndarray
    cached: int
    computed: int


class EmbeddingCache:
    def __init__(
        self, client: redis.Redis, keys: Keys, *, model_id: str, dim: int, ttl_s: int
    ) -> None:
        self._r = client
        self._k = keys
        self._model_id = model_id
        self._dim = dim
        self._ttl = ttl_s
        self._stats = CacheStats(client, keys)

    def _key(self, text: str) -> str:
        return self._k.cache("embeddings", f"{self._model_id}:{text_hash(text)}")

    def embed(
        self,
        texts: Sequence[str],
        encode: Callable[[Sequence[str]], np.ndarray],
        *,
        use_cache: bool = True,
    ) -> EmbedOutcome:
        """Vectors for `texts`, computing only those no process has embedded before."""
        if not texts:
            return EmbedOutcome(np.zeros((0, self._dim), np.float32), 0, 0)
        if not use_cache:
            return EmbedOutcome(encode(texts), 0, len(texts))
        keys = [self._key(t) for t in texts]
        found = self._r.mget(keys)
        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        missing: list[int] = []
        for i, raw in enumerate(found):
            if raw is not None and len(raw) == 4 * self._dim:
                out[i] = np.frombuffer(raw, dtype=np.float32)
            else:
                missing.append(i)
        if missing:
            unique = list(dict.fromkeys(texts[i] for i in missing))
            computed = encode(unique)
            by_text = dict(zip(unique, computed, strict=True))
            pipe = self._r.pipeline(transaction=False)
            for text, vec in by_text.items():
                pipe.set(self._key(text), np.asarray(vec, np.float32).tobytes(), ex=self._ttl)
            pipe.execute()
            for i in missing:
                out[i] = by_text[texts[i]]
        hits = len(texts) - len(missing)
        self._stats.count("embeddings", hits=hits, misses=len(missing))
        return EmbedOutcome(out, cached=hits, computed=len(missing))
