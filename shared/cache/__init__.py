"""The three Redis cache tiers: embeddings, retrievals and answers."""

from shared.cache.embeddings import EmbeddingCache
from shared.cache.tiers import TIERS, CacheStats, ResultCache

__all__ = ["TIERS", "CacheStats", "EmbeddingCache", "ResultCache"]
