"""The cache room: the result tiers (retrieval, answers), the embedding tier, their stats and
purge, and single flight (identical concurrent misses compute once, in any process)."""

from shared.cache.embeddings import EmbeddingCache
from shared.cache.stats import TIERS, CacheStats
from shared.cache.tiers import ResultCache

__all__ = ["TIERS", "CacheStats", "EmbeddingCache", "ResultCache"]
