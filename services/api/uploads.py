"""POST /ingest/upload's body, streamed to disk with its limits enforced while it arrives.

Starlette's form parser spools every file of a request (to memory, then temporary files)
before the route sees one, so a size check there comes after the bytes are stored. Here the
multipart stream is parsed as it is received: each file is written straight into the upload
folder under a safe name, and a file that passes RAG_MAX_FILE_MB is cut off and dropped at
that byte (the rest of the request still counts). The files' bytes together may be
RAG_MAX_UPLOAD_MB (beyond: 413; the body limit middleware caps the raw request the same way,
with room for the multipart framing), their number RAG_MAX_UPLOAD_FILES.

Writes go to the page cache in the request's own chunks (at most 64 KiB with uvicorn), so
they are done inline on the event loop rather than in the thread pool.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from services.api.schemas import RejectedFile
from shared.errors import InvalidRequestError, PayloadTooLargeError
from shared.ingest.sources import INGESTIBLE_SUFFIXES

MAX_FIELD_BYTES = 64 * 1024
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")

# What /openapi.json documents for the request body (the route reads the stream itself).
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Papers to ingest (each at most RAG_MAX_FILE_MB).",
                        },
                        "corpus": {"type": "string", "default": "default", "maxLength": 64},
                        "passwords": {
                            "type": "array",
                            "items": {"type": "string"},
                            "description": "Tried on encrypted PDFs.",
                        },
                    },
                }
            }
        },
    }
}


def safe_upload_name(name: str) -> str:
    """The last path component, stripped to safe characters; never '.', '..' or hidden."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = _SAFE_NAME.sub("_", base).strip(" .")
    if not base:
        raise InvalidRequestError(f"files: {name!r} is not a usable file name")
    return base[:200]


@dataclass
class ReceivedUpload:
    saved: list[tuple[str, Path]] = field(default_factory=list)  # (name as sent, file)
    rejected: list[RejectedFile] = field(default_factory=list)
    fields: dict[str, list[str]] = field(default_factory=dict)


class _Receiver:
    """python-multipart callbacks: files to `folder`, small fields to memory. Each part is a
    `field`, a `file` being written, or `skip` (a refused file, read and dropped)."""

    def __init__(
        self, folder: Path, *, max_file_bytes: int, max_total_bytes: int, max_files: int,
        charset: str,
    ) -> None:
        self.folder = folder
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self._total = 0
        self.max_files = max_files
        self.charset = charset
        self.out = ReceivedUpload()
        self._files_seen = 0
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._kind = "skip"
        self._name = ""  # the field's name, or the file's name as sent
        self._data = bytearray()
        self._file: IO[bytes] | None = None
        self._dest: Path | None = None
        self._written = 0

    def callbacks(self) -> dict[str, Any]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
        }

    def _decode(self, raw: bytes) -> str:
        return raw.decode(self.charset, errors="replace")

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._kind = "skip"
        self._data = bytearray()
        self._written = 0

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidRequestError("multipart: a part has no name in Content-Disposition")
        if b"filename" not in options:
            self._kind, self._name = "field", self._decode(options[b"name"])
            return
        self._files_seen += 1
        if self._files_seen > self.max_files:
            raise InvalidRequestError(
                f"files: over the limit RAG_MAX_UPLOAD_FILES={self.max_files}"
            )
        self._name = self._decode(options[b"filename"])
        try:
            name = safe_upload_name(self._name)
            if Path(name).suffix.lower() not in INGESTIBLE_SUFFIXES:
                raise InvalidRequestError(
                    f"{self._name}: unsupported file type; send "
                    + ", ".join(sorted(INGESTIBLE_SUFFIXES))
                )
        except InvalidRequestError as exc:
            self._reject(exc.detail)
            return
        dest = self.folder / name
        stem, suffix, n = dest.stem, dest.suffix, 1
        while dest.exists():  # two files of one upload with the same name
            dest = self.folder / f"{stem}-{n}{suffix}"
            n += 1
        self._dest = dest
        self._file = dest.open("xb")
        self._kind = "file"

    def _reject(self, error: str) -> None:
        self.out.rejected.append(RejectedFile(file=self._name, error=error))
        self._kind = "skip"

    def _drop_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._dest is not None:
            self._dest.unlink(missing_ok=True)
            self._dest = None

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._kind in ("file", "skip"):
            self._total += end - start
            if self._total > self.max_total_bytes:
                limit = f"RAG_MAX_UPLOAD_MB={self.max_total_bytes / 2**20:g}"
                raise PayloadTooLargeError(f"request body over the limit {limit}")
        if self._kind == "file":
            assert self._file is not None
            self._written += end - start
            if self._written > self.max_file_bytes:
                self._drop_file()
                limit = f"RAG_MAX_FILE_MB={self.max_file_bytes / 2**20:g}"
                self._reject(f"{self._name}: over the limit {limit}")
                return
            self._file.write(data[start:end])
        elif self._kind == "field":
            if len(self._data) + end - start > MAX_FIELD_BYTES:
                raise InvalidRequestError(
                    f"{self._name}: over {MAX_FIELD_BYTES // 1024} KiB for a form field"
                )
            self._data += data[start:end]

    def on_part_end(self) -> None:
        if self._kind == "file":
            assert self._file is not None and self._dest is not None
            self._file.close()
            self._file = None
            if self._written == 0:
                self._drop_file()
                self._reject(f"{self._name}: empty file")
            else:
                self.out.saved.append((self._name, self._dest))
                self._dest = None
        elif self._kind == "field":
            self.out.fields.setdefault(self._name, []).append(self._decode(self._data))
        self._kind = "skip"

    def close(self) -> None:
        """After the stream: a file cut short by an error is removed."""
        self._drop_file()


async def receive_upload(
    request: Request, folder: Path, *, max_file_bytes: int, max_total_bytes: int, max_files: int
) -> ReceivedUpload:
    """Stream the multipart body into `folder`. On any error the caller removes the folder."""
    content_type = request.headers.get("content-type", "")
    kind, params = parse_options_header(content_type)
    if kind != b"multipart/form-data" or b"boundary" not in params:
        raise InvalidRequestError("files: send multipart/form-data with a boundary")
    charset = params.get(b"charset", b"utf-8").decode("latin-1")
    receiver = _Receiver(
        folder,
        max_file_bytes=max_file_bytes,
        max_total_bytes=max_total_bytes,
        max_files=max_files,
        charset=charset if charset.lower() in {"utf-8", "utf8"} else "utf-8",
    )
    parser = MultipartParser(params[b"boundary"], receiver.callbacks())  # type: ignore[arg-type]
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise InvalidRequestError("files: the multipart body is malformed") from None
    finally:
        receiver.close()
    return receiver.out
