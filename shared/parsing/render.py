"""One PDF page as a PNG, with a cited passage highlighted, for showing a citation in context.

The passage is a chunk's text, which went through clean-up (hyphens joined, headers dropped,
spaces squeezed), so it is found on the page by aligning words, not by searching the raw
string: pdfium's own search misses a phrase that crosses a line break or a hyphenation.
The highlight spans the page's characters from the first to the last aligned word.
"""

from __future__ import annotations

import ctypes
import difflib
import io
import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.errors import ConflictError, NotFoundError

__all__ = ["RenderedPage", "locate_passage", "render_page_png"]

HIGHLIGHT_RGBA = (255, 214, 0, 96)  # translucent yellow: the text under it stays readable
OUTLINE_RGBA = (230, 150, 0, 200)
_WORD = re.compile(r"\w+")
# What pdfium or a typesetter leaves where a word was split at the end of a line.
_LINE_END_HYPHENS = frozenset("-\u00ad\u2010\ufffe\x02")
_MAX_GAP_WORDS = 25  # matched runs further apart than this are not one passage

_fallback_lock = threading.Lock()


def _pdfium_lock() -> Any:
    """The lock the PDF parser holds: pdfium is not thread-safe, one document at a time."""
    from shared.parsing import pdf as pdf_parsing

    return getattr(pdf_parsing, "_PDFIUM_LOCK", _fallback_lock)


@dataclass(frozen=True, slots=True)
class RenderedPage:
    png: bytes
    page_count: int
    highlight_rects: int  # rectangles drawn; 0 when no passage was asked for or found
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class _Word:
    norm: str
    start: int  # pdfium character indices, end exclusive
    end: int


def _normalise(word: str) -> str:
    return unicodedata.normalize("NFKC", word).casefold()


def _passage_words(text: str) -> list[str]:
    return [_normalise(m.group()) for m in _WORD.finditer(text)]


def _page_words(chars: str) -> list[_Word]:
    """Words of a page's characters, a word split by a line-end hyphen joined again."""
    words: list[_Word] = []
    previous_end = -1
    for m in _WORD.finditer(chars):
        gap = chars[previous_end : m.start()] if words else ""
        if words and _is_line_end_hyphen(gap):
            last = words[-1]
            words[-1] = _Word(last.norm + _normalise(m.group()), last.start, m.end())
        else:
            words.append(_Word(_normalise(m.group()), m.start(), m.end()))
        previous_end = m.end()
    return words


def _is_line_end_hyphen(gap: str) -> bool:
    core = gap.strip()
    if len(core) != 1 or core not in _LINE_END_HYPHENS:
        return False
    return core != "-" or "\n" in gap or "\r" in gap


def locate_passage(chars: str, passage: str) -> tuple[int, int] | None:
    """(first, last) character index of `passage` among a page's characters, or None.

    Aligns the passage's words with the page's; the longest matching run anchors the span,
    which grows over neighbouring runs no more than a few words away (so a stray "of the"
    elsewhere on the page does not stretch it). At least 40% of the passage must match.
    """
    wanted = _passage_words(passage)
    page = _page_words(chars)
    if not wanted or not page:
        return None
    matcher = difflib.SequenceMatcher(None, [w.norm for w in page], wanted, autojunk=False)
    runs = [b for b in matcher.get_matching_blocks() if b.size >= min(2, len(wanted))]
    if not runs:
        return None
    anchor = max(range(len(runs)), key=lambda i: runs[i].size)
    first, last = anchor, anchor
    while (
        first > 0 and runs[first].a - (runs[first - 1].a + runs[first - 1].size) <= _MAX_GAP_WORDS
    ):
        first -= 1
    while (
        last + 1 < len(runs)
        and runs[last + 1].a - (runs[last].a + runs[last].size) <= _MAX_GAP_WORDS
    ):
        last += 1
    matched = sum(r.size for r in runs[first : last + 1])
    if matched < max(1, round(0.4 * len(wanted))):
        return None
    start_word = page[runs[first].a]
    end_word = page[runs[last].a + runs[last].size - 1]
    return start_word.start, end_word.end - 1


def _page_chars(textpage: Any) -> str:
    """The page's characters, one per pdfium character index (so offsets are indices)."""
    import pypdfium2.raw as pdfium_c

    out = []
    for i in range(textpage.count_chars()):
        code = pdfium_c.FPDFText_GetUnicode(textpage.raw, i)
        out.append(chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else " ")
    return "".join(out)


def _to_device(page: Any, size: tuple[int, int], x: float, y: float) -> tuple[int, int]:
    import pypdfium2.raw as pdfium_c

    dx, dy = ctypes.c_int(), ctypes.c_int()
    pdfium_c.FPDF_PageToDevice(
        page.raw, 0, 0, size[0], size[1], 0, x, y, ctypes.byref(dx), ctypes.byref(dy)
    )
    return dx.value, dy.value


def _passage_boxes(
    pdf_page: Any, size: tuple[int, int], passage: str
) -> list[tuple[int, int, int, int]]:
    """Pixel boxes (left, top, right, bottom) of the lines the passage covers on the page."""
    textpage = pdf_page.get_textpage()
    try:
        span = locate_passage(_page_chars(textpage), passage)
        if span is None:
            return []
        first, last = span
        boxes = []
        for i in range(textpage.count_rects(first, last - first + 1)):
            left, bottom, right, top = textpage.get_rect(i)
            x0, y0 = _to_device(pdf_page, size, left, top)
            x1, y1 = _to_device(pdf_page, size, right, bottom)
            boxes.append((min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)))
        return boxes
    finally:
        textpage.close()


def _column_blocks(boxes: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """Line boxes in reading order grouped into blocks: a box joins the block before it when
    it shares the previous box's line or overlaps the block horizontally, so a passage that
    continues in the next column gets a frame of its own, not one around both columns."""
    blocks: list[tuple[int, int, int, int]] = []
    previous: tuple[int, int, int, int] | None = None
    for x0, y0, x1, y1 in boxes:
        same_line = previous is not None and y0 < previous[3] and y1 > previous[1]
        if blocks and (same_line or (x0 <= blocks[-1][2] and x1 >= blocks[-1][0])):
            b = blocks[-1]
            blocks[-1] = (min(b[0], x0), min(b[1], y0), max(b[2], x1), max(b[3], y1))
        else:
            blocks.append((x0, y0, x1, y1))
        previous = (x0, y0, x1, y1)
    return blocks


def render_page_png(
    path: Path, *, page: int, passage: str | None = None, scale: float = 1.5
) -> RenderedPage:
    """Page `page` (1-based) of the PDF at `path` as PNG bytes, `passage` highlighted if found.

    NotFoundError when the page does not exist; ConflictError when pdfium cannot open the
    file (encrypted without a password, or damaged beyond what pdfium reads).
    """
    import pypdfium2 as pdfium
    from PIL import Image, ImageDraw

    with _pdfium_lock():
        try:
            pdf = pdfium.PdfDocument(str(path))
        except pdfium.PdfiumError as exc:
            if "password" in str(exc).lower():
                raise ConflictError(
                    f"{path.name} is encrypted: its pages cannot be rendered without the password"
                ) from None
            raise ConflictError(
                f"{path.name}: pdfium cannot open it to render a page ({exc})"
            ) from None
        try:
            count = len(pdf)
            if not 1 <= page <= count:
                raise NotFoundError(
                    f"page {page}: {path.name} has {count} page(s), numbered from 1"
                )
            pdf_page = pdf[page - 1]
            try:
                image = pdf_page.render(scale=scale, may_draw_forms=False).to_pil().convert("RGB")
                boxes = _passage_boxes(pdf_page, image.size, passage) if passage else []
            finally:
                pdf_page.close()
        finally:
            pdf.close()

    if boxes:
        overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
        draw = ImageDraw.Draw(overlay)
        pad = max(1, round(scale))
        for x0, y0, x1, y1 in boxes:
            draw.rectangle((x0 - pad, y0 - pad, x1 + pad, y1 + pad), fill=HIGHLIGHT_RGBA)
        for x0, y0, x1, y1 in _column_blocks(boxes):
            draw.rectangle(
                (x0 - 3 * pad, y0 - 3 * pad, x1 + 3 * pad, y1 + 3 * pad),
                outline=OUTLINE_RGBA,
                width=pad + 1,
            )
        image = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=3)
    return RenderedPage(
        png=buffer.getvalue(),
        page_count=count,
        highlight_rects=len(boxes),
        width=image.size[0],
        height=image.size[1],
    )
