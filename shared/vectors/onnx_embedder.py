"""Sentence embeddings on ONNX Runtime: the torch `Embedder`'s vectors, without torch at run time.

The transformer is exported once from the bundled weights (no download) to
`<cache_dir>/<model id>-onnx<recipe>.onnx`, in a child process so the serving process never
imports torch; tokenising (the model's fast tokenizer), mean pooling and L2 normalisation
then happen here exactly as sentence-transformers does them for all-MiniLM-L6-v2. The model
id is the torch backend's, so cached and stored vectors stay valid (cosine >= 0.999 on every
SciFact chunk: tests/integration/test_onnx_parity.py).

Several worker processes may start at once: an exclusive file lock lets one export while the
rest wait, and the file appears by an atomic rename, so none ever loads half a model.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

__all__ = ["OnnxEmbedder", "export_onnx", "onnx_model_file"]

# Bump when the exported graph changes (inputs, outputs, opset, attention implementation):
# files of an older recipe are then left alone and a new one is exported.
_RECIPE = 1
_OPSET = 17
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_EXPORT_TIMEOUT_S = 600
# Rows per session run. A run pads every row to its longest; on CPU a wider batch buys
# nothing back, so small runs of length-sorted rows cost least: 708 chunks of the real
# papers, in the pipeline's batches of 32, took 45.0 CPU s in runs of 32, 36.6 in runs of 8,
# 32.9 in runs of 4 and 31.1 one by one (one thread).
_ROWS_PER_RUN = 4


INT8 = "+int8"  # the model id suffix of the quantized embedder: its vectors are not the model's


def onnx_model_file(model_id: str, cache_dir: Path, *, quantized: bool = False) -> Path:
    return Path(cache_dir) / f"{model_id}-onnx{_RECIPE}{'-int8' if quantized else ''}.onnx"


class OnnxEmbedder:
    """Normalised float32 vectors from ONNX Runtime; a drop-in for `Embedder`. Thread-safe.

    `quantized`: the model's int8 dynamic quantization instead (weights per channel), ~2x
    faster on CPU, cosine ~0.993 to the exact vectors (min 0.984 on 400 SciFact sentences).
    Not for anything stored or compared with stored vectors: its model id says so (`+int8`),
    so no cache mixes the two."""

    def __init__(
        self,
        model_path: str | None = None,
        *,
        cache_dir: Path,
        threads: int = 0,
        batch_size: int = 32,
        quantized: bool = False,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        from shared.vectors.embedding import default_model_path, model_identity

        self.model_path = model_path or default_model_path()
        exact_id = model_identity(self.model_path)  # reads the tokenizer and config files
        self.model_id = exact_id + (INT8 if quantized else "")
        self.batch_size = batch_size
        root = Path(self.model_path)
        self._pooling = _pooling_mode(root)
        self.max_tokens = _max_seq_length(root)
        self.dim = int(json.loads((root / "config.json").read_text())["hidden_size"])

        # tokenizer.json of this model ships truncation at 128 and fixed padding to 128;
        # sentence-transformers truncates at max_seq_length and pads each batch to its longest.
        self._tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(max_length=self.max_tokens)
        self._pad_id = _pad_id(root)

        self.onnx_path = ensure_onnx(self.model_path, exact_id, Path(cache_dir))
        if quantized:
            self.onnx_path = ensure_quantized(
                self.onnx_path, onnx_model_file(exact_id, Path(cache_dir), quantized=True)
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads  # 0: ONNX Runtime's default, the physical cores
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Memory patterns are planned per input shape, and every batch has its own width:
        # without them RSS stays ~130 MB lower at the same speed.
        options.enable_mem_pattern = False
        # Pool threads spin between the operators of a run, and stop when the run ends: idle
        # spinning would take CPU from the other processes on the same cores (workers embed
        # while the API answers queries). One SciFact query, 2 threads, 300 queries 3 ms
        # apart: p50 4.3 ms and 8.6 ms CPU per query, against 5.5 ms and 9.4 ms without
        # spinning (threads put to sleep and woken at every operator) and 4.3 ms but 12.2 ms
        # with spinning left on between runs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1")
        options.add_session_config_entry("session.force_spinning_stop", "1")
        self._session = ort.InferenceSession(
            str(self.onnx_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._wanted = {i.name for i in self._session.get_inputs()}

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        lengths = np.array([len(e.ids) for e in encodings])
        # Longest first, as sentence-transformers batches, in short runs: little padding.
        order = np.argsort(-lengths, kind="stable")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        step = min(self.batch_size, _ROWS_PER_RUN)
        for start in range(0, len(order), step):
            rows = order[start : start + step]
            out[rows] = self._embed([encodings[i] for i in rows])
        return out

    def _embed(self, encodings: list[Any]) -> np.ndarray:
        width = max(len(e.ids) for e in encodings)
        ids = np.full((len(encodings), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(encodings), width), dtype=np.int64)
        types = np.zeros((len(encodings), width), dtype=np.int64)
        for row, e in enumerate(encodings):
            n = len(e.ids)
            ids[row, :n] = e.ids
            mask[row, :n] = 1
            types[row, :n] = e.type_ids
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._wanted})[0]
        return _normalised(_pooled(hidden, mask, self._pooling))


def _pooled(hidden: np.ndarray, mask: np.ndarray, mode: str) -> np.ndarray:
    if mode == "cls":
        return np.asarray(hidden[:, 0], dtype=np.float32)
    weights = mask[..., None].astype(np.float32)
    summed = (hidden * weights).sum(axis=1)
    return summed / np.clip(weights.sum(axis=1), 1e-9, None)  # sentence-transformers' clamp


def _normalised(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.clip(norms, 1e-12, None)).astype(np.float32)  # torch's F.normalize eps


# ---- the model's sentence-transformers configuration ---------------------------------------


def _pooling_mode(root: Path) -> str:
    """'mean' or 'cls', from the Pooling module's config; anything else is refused."""
    modules = json.loads((root / "modules.json").read_text())
    pooling = next((m for m in modules if m["type"].endswith(".Pooling")), None)
    if pooling is None:
        raise ValueError(f"{root}: modules.json has no Pooling module: use RAG_EMBED_BACKEND=torch")
    config = json.loads((root / pooling["path"] / "config.json").read_text())
    modes = {
        k.removeprefix("pooling_mode_")
        for k, v in config.items()
        if k.startswith("pooling_mode_") and v
    }
    if modes == {"mean_tokens"}:
        return "mean"
    if modes == {"cls_token"}:
        return "cls"
    raise ValueError(
        f"{root}: pooling {sorted(modes)} is not supported by the ONNX backend: "
        "use RAG_EMBED_BACKEND=torch"
    )


def _max_seq_length(root: Path) -> int:
    config = json.loads((root / "config.json").read_text())
    limit = int(config.get("max_position_embeddings", 512))
    st_config = root / "sentence_bert_config.json"
    if st_config.exists():
        return min(int(json.loads(st_config.read_text()).get("max_seq_length", limit)), limit)
    return limit


def _pad_id(root: Path) -> int:
    return int(json.loads((root / "config.json").read_text()).get("pad_token_id") or 0)


# ---- export, once per model and cache directory --------------------------------------------


def ensure_onnx(model_path: str, model_id: str, cache_dir: Path) -> Path:
    """The exported model file, exporting it first if no process has yet."""
    target = onnx_model_file(model_id, cache_dir)
    if target.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(target.with_name(target.name + ".lock")):
        if not target.is_file():  # another process may have written it while we waited
            _export_in_child(model_path, target)
    return target


def ensure_quantized(exported: Path, target: Path) -> Path:
    """`target`, the int8 quantization of an exported model file, made once (atomically)."""
    if target.is_file():
        return target
    with _exclusive(target.with_name(target.name + ".lock")):
        if not target.is_file():
            from onnxruntime.quantization import QuantType, quantize_dynamic

            fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
            os.close(fd)
            advice = _DropAdvice()  # quantize_dynamic's note about image models' pre-processing
            logging.getLogger().addFilter(advice)
            try:
                quantize_dynamic(exported, tmp, weight_type=QuantType.QInt8, per_channel=True)
                os.chmod(tmp, 0o644)
                os.replace(tmp, target)
            finally:
                logging.getLogger().removeFilter(advice)
                if os.path.exists(tmp):
                    os.unlink(tmp)
    return target


class _DropAdvice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    with lock_path.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _export_in_child(model_path: str, target: Path) -> None:
    """Run `export_onnx` in a fresh interpreter: torch is loaded there and freed on exit."""
    code = (
        "import sys; from pathlib import Path; "
        "from shared.vectors.onnx_embedder import export_onnx; "
        "export_onnx(sys.argv[1], Path(sys.argv[2]))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    proc = subprocess.run(
        [sys.executable, "-c", code, model_path, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=_EXPORT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0 or not target.is_file():
        raise RuntimeError(
            f"exporting {model_path} to ONNX failed (exit {proc.returncode}): "
            f"{proc.stderr.strip()[-2000:]}"
        )


def export_onnx(model_path: str, target: Path) -> None:
    """Export the transformer (token ids, mask, types -> last hidden state) to `target`.

    Written to a temporary file beside `target` and renamed into place, so a reader sees
    either nothing or the whole file.
    """
    import warnings

    import torch
    from transformers import AutoModel

    # Eager attention traces to plain ops that honour any padding mask; the default (SDPA)
    # path holds Python-side shortcuts that tracing would freeze.
    model = AutoModel.from_pretrained(model_path, attn_implementation="eager")
    model.eval()

    class _LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor,
        ) -> torch.Tensor:
            out = self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            )
            return out.last_hidden_state

    # A padded example, so nothing in the trace assumes an all-ones mask.
    ids = torch.full((2, 16), 1000, dtype=torch.long)
    mask = torch.ones((2, 16), dtype=torch.long)
    mask[1, 9:] = 0
    axes = {0: "batch", 1: "tokens"}
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation and trace notes
            torch.onnx.export(
                _LastHiddenState(model),
                (ids, mask, torch.zeros_like(ids)),
                tmp,
                input_names=list(_INPUTS),
                output_names=["last_hidden_state"],
                dynamic_axes={name: axes for name in (*_INPUTS, "last_hidden_state")},
                opset_version=_OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private to this user
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
