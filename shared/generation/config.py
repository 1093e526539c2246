"""Settings of answer generation live in `shared.settings` (one source); re-exported here."""

from shared.settings import GENERATORS, GenerationSettings

__all__ = ["GENERATORS", "GenerationSettings"]
