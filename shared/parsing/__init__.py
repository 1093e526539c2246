"""Files to text: PDF, HTML, Markdown and plain text to page-aware `ParsedDocument`s, JSONL
corpora to one document per record, and one error class per reason a file cannot be read.

    detect_format(path) -> "pdf" | "html" | "markdown" | "text" | "jsonl"
    parse_file(path, *, passwords=(), max_pages, max_bytes) -> ParsedDocument
    parse_file_with_timeout(path, *, timeout_s, passwords=(), max_pages, max_bytes)
    iter_jsonl(path) -> Iterator[ParsedDocument]
"""

from .detect import FORMATS, detect_format
from .errors import (
    BadRecordError,
    EmptyFileError,
    EncryptedPdfError,
    FileTooLargeError,
    MalformedPdfError,
    NoTextError,
    ParseError,
    ParserCrashedError,
    ParseTimeoutError,
    PdfError,
    TooManyPagesError,
    UnsupportedFormatError,
)
from .jsonl import iter_jsonl
from .parse import parse_file
from .timeout import parse_file_with_timeout

__all__ = [
    "FORMATS",
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
    "detect_format",
    "iter_jsonl",
    "parse_file",
    "parse_file_with_timeout",
]
