"""Stable identities: corpus names, document hashes and chunk point ids."""

from __future__ import annotations

import hashlib
import re
import uuid
from pathlib import Path

from shared.errors import InvalidRequestError

CORPUS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
CORPUS_NAME_RULE = "1-64 letters, digits, '_' or '-', starting with a letter or digit"

_POINT_NAMESPACE = uuid.UUID("6f1c2b7e-3d1a-4e8f-9a55-0c1d2e3f4a5b")


def check_corpus_name(name: str) -> str:
    if not CORPUS_NAME.fullmatch(name):
        raise InvalidRequestError(f"corpus: {name!r} is not a valid corpus name ({CORPUS_NAME_RULE})")
    return name


def file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def point_id(*, doc_id: str, chunk_index: int, chunking_signature: str) -> str:
    """Same document, same chunk, same chunking settings: same id, so writes are idempotent."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{doc_id}:{chunk_index}:{chunking_signature}"))
