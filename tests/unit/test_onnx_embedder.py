"""The ONNX Runtime embedder on tiny inputs: shapes, unit length, order, truncation, the model
file it exports once, and the pooling configurations it accepts. Uses the bundled model."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from shared.vectors.embedding import default_model_path, model_identity
from shared.vectors.onnx_embedder import OnnxEmbedder, _pooling_mode, onnx_model_file

TEXTS = [
    "Dense retrieval maps questions and passages into one vector space.",
    "BM25",
    "",
    (
        "Mutations in BRCA1 raise the lifetime risk of breast cancer, as several cohort "
        "studies of carriers have shown over the last three decades."
    ),
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=cache_dir, threads=1, batch_size=2)


def test_vectors_are_float32_unit_rows_one_per_text(embedder: OnnxEmbedder) -> None:
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), 384) and embedder.dim == 384
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_an_empty_matrix(embedder: OnnxEmbedder) -> None:
    vectors = embedder.encode([])
    assert vectors.shape == (0, 384) and vectors.dtype == np.float32


def test_each_row_is_its_own_text_whatever_the_batch(embedder: OnnxEmbedder) -> None:
    # Batches of 2 over mixed lengths: rows are sorted and padded internally, then put back.
    together = embedder.encode(TEXTS)
    alone = np.vstack([embedder.encode([t]) for t in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert len({tuple(np.round(row, 4)) for row in together}) == len(TEXTS)


def test_related_texts_are_closer_than_unrelated_ones(embedder: OnnxEmbedder) -> None:
    q, near, far = embedder.encode(
        ["breast cancer risk genes", "BRCA1 mutations and breast cancer", "a recipe for bread"]
    )
    assert q @ near > q @ far + 0.2


def test_text_beyond_max_seq_length_is_truncated(embedder: OnnxEmbedder) -> None:
    assert embedder.max_tokens == 256  # sentence_bert_config.json, not tokenizer.json's 128
    long, longer = embedder.encode(["gene " * 300, "gene " * 600])
    np.testing.assert_allclose(long, longer, atol=1e-6)
    # ... but not at 128: a text of ~200 pieces differs from its first 128.
    first, second = embedder.encode(["protein " * 100 + "kinase " * 100, "protein " * 126])
    assert float(first @ second) < 0.999


def test_model_id_is_the_torch_backends(embedder: OnnxEmbedder) -> None:
    assert embedder.model_id == model_identity(default_model_path())


def test_the_exported_model_is_reused(embedder: OnnxEmbedder, cache_dir: Path) -> None:
    path = onnx_model_file(embedder.model_id, cache_dir)
    assert embedder.onnx_path == path and path.is_file()
    stamp = path.stat().st_mtime_ns
    again = OnnxEmbedder(cache_dir=cache_dir, threads=1)
    assert path.stat().st_mtime_ns == stamp
    assert [p.name for p in cache_dir.iterdir() if not p.name.endswith(".lock")] == [path.name]
    np.testing.assert_allclose(again.encode(TEXTS[:1]), embedder.encode(TEXTS[:1]), atol=1e-6)


def _model_dir(tmp_path: Path, pooling: dict[str, bool]) -> Path:
    (tmp_path / "1_Pooling").mkdir()
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {
            "idx": 1,
            "name": "1",
            "path": "1_Pooling",
            "type": "sentence_transformers.models.Pooling",
        },
    ]
    (tmp_path / "modules.json").write_text(json.dumps(modules))
    config = {
        "word_embedding_dimension": 384,
        **{f"pooling_mode_{k}": v for k, v in pooling.items()},
    }
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_mean_and_cls_pooling_are_read_from_the_model(tmp_path: Path) -> None:
    assert _pooling_mode(Path(default_model_path())) == "mean"
    assert _pooling_mode(_model_dir(tmp_path, {"cls_token": True, "mean_tokens": False})) == "cls"


def test_other_pooling_is_refused_with_the_setting_to_use(tmp_path: Path) -> None:
    model = _model_dir(tmp_path, {"max_tokens": True, "mean_tokens": False})
    with pytest.raises(ValueError, match="RAG_EMBED_BACKEND=torch"):
        _pooling_mode(model)


def test_the_int8_embedder_is_close_to_exact_and_says_it_is_not(cache_dir: Path) -> None:
    """What ranks extractive answers' sentences (RAG_EXTRACTIVE_INT8): quantized once, beside
    the exported model, under its own model id, so no cache mixes its vectors with exact ones."""
    exact = OnnxEmbedder(cache_dir=cache_dir, threads=1)
    int8 = OnnxEmbedder(cache_dir=cache_dir, threads=1, quantized=True)
    assert int8.model_id == exact.model_id + "+int8"
    assert int8.onnx_path == onnx_model_file(exact.model_id, cache_dir, quantized=True)
    assert int8.onnx_path.stat().st_size < exact.onnx_path.stat().st_size / 3
    texts = [t for t in TEXTS if t]
    cosine = (exact.encode(texts) * int8.encode(texts)).sum(axis=1)
    assert cosine.min() >= 0.97, cosine
    q, near, far = int8.encode([
        "Which genes raise breast cancer risk?",
        "Mutations in BRCA1 raise the lifetime risk of breast cancer.",
        "The committee met on Tuesday to discuss the budget.",
    ])
    assert q @ near > q @ far + 0.2
