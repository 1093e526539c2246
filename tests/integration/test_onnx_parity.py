"""The ONNX backend gives the torch backend's vectors on real SciFact chunks, and worker
processes starting together on an empty data dir export the model once, safely.

Parity runs on a fixed random sample of 1,000 of SciFact's ~11.9k chunks (numpy
default_rng(14), without replacement): both backends encoding every chunk costs about 30
CPU-minutes (62 ms of CPU per chunk for ONNX, 90 ms for torch); this sample about 2.5.
bench/embed_backends.py checks every chunk (`--parity all`) and, with `--parity sample`,
this same sample.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from shared.chunking import Chunker
from shared.parsing import iter_jsonl
from shared.settings import ChunkingSettings
from shared.vectors.embedding import Embedder, default_model_path
from shared.vectors.onnx_embedder import OnnxEmbedder

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
SAMPLE, SEED = 1000, 14
MIN_COSINE = 0.999


@pytest.fixture(scope="module")
def scifact_chunks(shared_data: Path) -> list[str]:
    settings = ChunkingSettings()
    chunker = Chunker.from_model_path(
        default_model_path(),
        max_tokens=settings.max_tokens,
        overlap_tokens=settings.overlap_tokens,
    )
    corpus = shared_data / "scifact" / "corpus.jsonl"
    # What the embed stage embeds: the title, cut to fit, then the chunk's text.
    return [
        chunker.titled(doc.title, c.text, n_tokens=c.n_tokens)
        for doc in iter_jsonl(corpus)
        for c in chunker.chunk(doc)
    ]


@pytest.mark.timeout(1200)
def test_onnx_vectors_match_torch_on_a_fixed_sample_of_scifact_chunks(
    scifact_chunks: list[str], tmp_path: Path
) -> None:
    assert len(scifact_chunks) > 10_000  # 5,183 abstracts
    picks = np.sort(np.random.default_rng(SEED).choice(len(scifact_chunks), SAMPLE, replace=False))
    texts = [scifact_chunks[i] for i in picks]

    onnx = OnnxEmbedder(cache_dir=tmp_path / "models", threads=0, batch_size=32)
    torch = Embedder(threads=0, batch_size=32)
    assert onnx.model_id == torch.model_id and onnx.dim == torch.dim
    # Batches of 32 in file order, as embed tasks receive them.
    a = np.vstack([onnx.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)])
    b = np.vstack([torch.encode(texts[i : i + 32]) for i in range(0, len(texts), 32)])

    cosines = (a * b).sum(axis=1)  # both unit length
    worst = int(np.argmin(cosines))
    assert cosines.min() >= MIN_COSINE, (
        f"chunk {picks[worst]} cosine {cosines[worst]:.6f}: {texts[worst][:200]!r}"
    )
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


_WORKER = """
import json, sys
from pathlib import Path
from shared.vectors.onnx_embedder import OnnxEmbedder
embedder = OnnxEmbedder(cache_dir=Path(sys.argv[1]), threads=1)
print(json.dumps({"path": str(embedder.onnx_path),
                  "vector": embedder.encode(["gene expression in yeast"])[0].tolist()}))
"""


@pytest.mark.timeout(900)
def test_processes_starting_together_share_one_exported_model(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(cache)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    deadline = time.monotonic() + 600
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))

    assert len({r["path"] for r in results}) == 1
    files = sorted(p.name for p in cache.iterdir())
    model = Path(results[0]["path"]).name
    assert files == [model, model + ".lock"]  # no half-written temporary left behind
    vectors = np.array([r["vector"] for r in results])
    np.testing.assert_allclose(vectors, vectors[0][None, :].repeat(3, axis=0), atol=1e-6)
