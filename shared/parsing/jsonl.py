"""JSON Lines corpora (BEIR style): one document per line, `{"_id", "title", "text", "metadata"}`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from shared.documents import Page, ParsedDocument

from .errors import BadRecordError

__all__ = ["iter_jsonl"]


def iter_jsonl(path: Path | str) -> Iterator[ParsedDocument]:
    """Yield one "jsonl-record" document per non-blank line; a bad line raises BadRecordError.

    Records already yielded stay valid, so a caller can keep what came before the bad line.
    """
    with Path(path).open("rb") as file:
        for number, raw in enumerate(file, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")
            if not raw.strip():
                continue
            yield _record(raw, line=number)


def _record(raw: bytes, *, line: int) -> ParsedDocument:
    try:
        text_line = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadRecordError(line=line, detail=f"not UTF-8 (byte {error.start})") from error
    try:
        record = json.loads(text_line)
    except json.JSONDecodeError as error:
        raise BadRecordError(
            line=line, detail=f"invalid JSON ({error.msg} at column {error.colno})"
        ) from error
    if not isinstance(record, dict):
        raise BadRecordError(line=line, detail=f"expected a JSON object, got {_json_type(record)}")
    external_id = record.get("_id")
    if external_id is None or isinstance(external_id, (dict, list, bool)) or external_id == "":
        raise BadRecordError(line=line, detail='missing "_id" (a string or a number)')
    text = record.get("text")
    if not isinstance(text, str):
        raise BadRecordError(line=line, detail=f'"text" must be a string, got {_json_type(text)}')
    title = record.get("title", "")
    if title is None:
        title = ""
    if not isinstance(title, str):
        raise BadRecordError(line=line, detail=f'"title" must be a string, got {_json_type(title)}')
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise BadRecordError(
            line=line, detail=f'"metadata" must be an object, got {_json_type(metadata)}'
        )
    return ParsedDocument(
        title=title.strip(),
        format="jsonl-record",
        pages=[Page(number=1, text=text)],
        external_id=str(external_id),
        metadata={str(key): _as_str(value) for key, value in metadata.items()},
    )


def _as_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
