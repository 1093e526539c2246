"""Bytes of a text file to `str`: a BOM, else UTF-8, else a guessed legacy encoding; never fails."""

from __future__ import annotations

import codecs

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE: it starts with the same two bytes
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# charset_normalizer ranks Western European text as cp1250 about as often as cp1252; the
# difference is a handful of accented letters, and cp1252 is by far the more common one.
_LATIN_FAMILY = {
    "cp1250",
    "cp1252",
    "cp1254",
    "cp1257",
    "latin_1",
    "iso8859_2",
    "iso8859_9",
    "iso8859_15",
    "mac_latin2",
    "mac_roman",
    "ascii",
}


def bom_encoding(data: bytes) -> str | None:
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding
    return None


def guess_encoding(data: bytes) -> str:
    """The encoding to read `data` with; "utf-8" unless the bytes say otherwise."""
    if encoding := bom_encoding(data):
        return encoding
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    guess = _charset_normalizer_guess(data)
    if guess is not None and guess not in _LATIN_FAMILY:
        return guess
    try:
        data.decode("cp1252")
    except UnicodeDecodeError:  # 0x81, 0x8d, 0x8f, 0x90, 0x9d are unmapped in cp1252
        return "latin-1"
    return "cp1252"


def _charset_normalizer_guess(data: bytes) -> str | None:
    try:
        import charset_normalizer
    except ImportError:  # optional: without it, legacy files are read as cp1252 / latin-1
        return None
    best = charset_normalizer.from_bytes(data[: 256 * 1024]).best()
    return None if best is None else str(best.encoding)


def decode_text(data: bytes) -> str:
    """Decode a whole text file; undecodable bytes become U+FFFD instead of raising."""
    encoding = guess_encoding(data)
    text = data.decode(encoding, errors="replace")
    return text.removeprefix("\ufeff")
