"""Why a file could not be turned into text: one exception per reason a user can act on.

ParseError                    - `reason` is the sentence a user reads; `str(error) == error.reason`
 |
 +-- EmptyFileError           - "empty file"
 +-- FileTooLargeError        - "file is 12.3 MiB, over the limit RAG_MAX_FILE_MB=10"
 +-- UnsupportedFormatError   - "unsupported format: <what was seen>"
 +-- BadRecordError           - "line 17: <what is wrong>" (one line of a JSONL file)
 +-- ParseTimeoutError        - "parse timed out after 120 s (RAG_PARSE_TIMEOUT_S)"
 +-- ParserCrashedError       - "parser crashed (exit code -11)": the child process died
 +-- PdfError                 - the PDF family
      +-- EncryptedPdfError   - "encrypted: password required" / "encrypted: wrong password"
      +-- NoTextError         - "no extractable text (scanned?)"
      +-- MalformedPdfError   - "malformed PDF: <detail>"
      +-- TooManyPagesError   - "PDF has 2500 pages, over the limit RAG_MAX_PAGES=2000"

`retryable` tells a worker whether trying the same file again can help; none of these can:
they are properties of the file (a timeout repeats on the same input). `code` is a stable,
machine-readable name for API error bodies. Every error pickles with its attributes, so one
raised in a parsing child process comes back to the parent unchanged.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "BadRecordError",
    "EmptyFileError",
    "EncryptedPdfError",
    "FileTooLargeError",
    "MalformedPdfError",
    "NoTextError",
    "ParseError",
    "ParseTimeoutError",
    "ParserCrashedError",
    "PdfError",
    "TooManyPagesError",
    "UnsupportedFormatError",
]


def _restore(cls: type[ParseError], reason: str) -> ParseError:
    error = cls.__new__(cls)
    Exception.__init__(error, reason)
    return error


def _mib(n_bytes: int, *, above: float) -> str:
    """Size in MiB with one decimal, or two when one would not show it is over `above`."""
    mib = n_bytes / 2**20
    shown = f"{mib:.1f}"
    return shown if float(shown) > above else f"{mib:.2f}"


class ParseError(Exception):
    """A file we cannot read; `reason` says why in words a user understands."""

    retryable: ClassVar[bool] = False
    code: ClassVar[str] = "parse_error"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)

    @property
    def reason(self) -> str:
        return str(self.args[0])

    def __str__(self) -> str:
        return self.reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take keyword arguments, not the reason: rebuild from the reason, then
        # restore the attributes, so pickling works for every subclass without boilerplate.
        return (_restore, (type(self), self.reason), self.__dict__)


class EmptyFileError(ParseError):
    code = "empty_file"

    def __init__(self) -> None:
        super().__init__("empty file")


class FileTooLargeError(ParseError):
    code = "file_too_large"

    def __init__(self, *, size_bytes: int, max_bytes: int) -> None:
        self.size_bytes = size_bytes
        self.max_bytes = max_bytes
        limit_mb = max_bytes / 2**20
        super().__init__(
            f"file is {_mib(size_bytes, above=limit_mb)} MiB, "
            f"over the limit RAG_MAX_FILE_MB={limit_mb:g}"
        )


class UnsupportedFormatError(ParseError):
    code = "unsupported_format"

    def __init__(self, seen: str) -> None:
        self.seen = seen
        super().__init__(f"unsupported format: {seen}")


class BadRecordError(ParseError):
    """One line of a JSONL file is not a usable record; `line` is 1-based."""

    code = "bad_record"

    def __init__(self, *, line: int, detail: str) -> None:
        self.line = line
        self.detail = detail
        super().__init__(f"line {line}: {detail}")


class ParseTimeoutError(ParseError):
    code = "parse_timeout"

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        super().__init__(f"parse timed out after {timeout_s:g} s (RAG_PARSE_TIMEOUT_S)")


class ParserCrashedError(ParseError):
    """The parsing child process died without an answer (a crash inside a native library)."""

    code = "parser_crashed"

    def __init__(self, *, exit_code: int | None) -> None:
        self.exit_code = exit_code
        super().__init__(f"parser crashed (exit code {exit_code})")


class PdfError(ParseError):
    code = "pdf_error"


class EncryptedPdfError(PdfError):
    code = "encrypted_pdf"

    def __init__(self, *, passwords_tried: bool) -> None:
        self.passwords_tried = passwords_tried
        what = "wrong password" if passwords_tried else "password required"
        super().__init__(f"encrypted: {what}")


class NoTextError(PdfError):
    code = "no_text"

    def __init__(self) -> None:
        super().__init__("no extractable text (scanned?)")


class MalformedPdfError(PdfError):
    code = "malformed_pdf"

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(f"malformed PDF: {detail}")


class TooManyPagesError(PdfError):
    code = "too_many_pages"

    def __init__(self, *, pages: int, max_pages: int) -> None:
        self.pages = pages
        self.max_pages = max_pages
        super().__init__(f"PDF has {pages} pages, over the limit RAG_MAX_PAGES={max_pages}")
