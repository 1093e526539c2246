"""Clean-up of extracted text: whitespace for every format; for PDF pages also line-end
hyphens, running headers/footers and page numbers.

PDF extractors mark a hyphen that ends a line in a special way (pdfium: U+FFFE, then joins the
lines; others: "-" then a newline). Whether it was a break inside one word ("inter-esting") or a
real compound ("self-reported") is decided from the document itself: whichever spelling occurs
elsewhere in it wins; without evidence a few common compound parts keep their hyphen and
everything else is joined, as a typesetter's hyphenation is far more common than a compound
that happens to break at the line end.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter

__all__ = ["clean_pdf_pages", "normalize_whitespace"]

_LINE_END_MARKERS = "\ufffe\u00ad"  # pdfium's hyphen at a line end; a soft hyphen
_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufeff\ufffe\uffff]")
_SPACES = re.compile(r"[^\S\n]+")  # every kind of space but the newline
_BLANK_LINES = re.compile(r"\n{3,}")

_WORD = re.compile(r"[^\W\d_]+")
_COMPOUND = re.compile(r"(?<![\w-])([^\W\d_]+)-([^\W\d_]+)(?![\w-])")
_MARKED_BREAK = re.compile(r"(\w+)[\ufffe\u00ad][^\S\n]*\n?[^\S\n]*(\w+)")
_PLAIN_BREAK = re.compile(r"([^\W\d_]+)-\n([^\W\d_]+)")

# Compound parts that keep their hyphen when the document gives no evidence either way.
_HYPHEN_PREFIXES = frozenset(
    [
        "self",
        "non",
        "cross",
        "multi",
        "semi",
        "well",
        "state",
        "large",
        "small",
        "high",
        "low",
        "long",
        "short",
        "fine",
        "two",
        "three",
        "four",
        "open",
        "end",
        "user",
        "data",
        "task",
        "domain",
        "human",
        "machine",
        "rule",
        "model",
    ]
)
_HYPHEN_SUFFIXES = frozenset(
    [
        "based",
        "aware",
        "specific",
        "level",
        "scale",
        "style",
        "like",
        "free",
        "related",
        "driven",
        "grained",
        "oriented",
        "dependent",
        "independent",
        "only",
        "wide",
        "trained",
        "tuned",
        "art",
        "shot",
        "time",
        "world",
        "reported",
        "source",
        "quality",
    ]
)

_EDGE_LINES = 5  # running headers/footers are looked for in the first and last lines of a page
_PAGE_NUMBER = re.compile(
    r"^(?:page\s*)?[-–—(\[]?\s*(\d{1,5})\s*[-–—)\]]?(?:\s*(?:of|/)\s*\d{1,5})?$", re.IGNORECASE
)
_MIN_KEY_LETTERS = 6


def normalize_whitespace(text: str) -> str:
    """One space between words, no spaces at line ends, at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


def clean_pdf_pages(raw_pages: list[str]) -> list[str]:
    """Page texts from a PDF extractor, cleaned; the result has one entry per input page."""
    pages = [_page_lines(raw) for raw in raw_pages]
    pages = _drop_running_lines(pages)
    texts = ["\n".join(lines) for lines in pages]
    evidence = _Evidence(texts)
    return [normalize_whitespace(_remove_controls(evidence.dehyphenate(t))) for t in texts]


def _page_lines(raw: str) -> list[str]:
    # NFKC folds ligatures ("ﬁ") and compatibility forms, which PDFs are full of.
    # pdfium ends lines with "\r\n"; a lone "\r" is a glyph it could not map (a "©").
    text = unicodedata.normalize("NFKC", raw.replace("\r\n", "\n").replace("\r", " "))
    text = text.replace("\f", " ").replace("\t", " ")
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return [line for line in lines if line]


def _remove_controls(text: str) -> str:
    return _CONTROLS.sub(" ", text)


# --- running headers, footers and page numbers ----------------------------------------------


def _line_key(line: str) -> str:
    """A header line with its page number taken out, so "Page 3" and "Page 4" match."""
    return " ".join(re.findall(r"[^\W\d_]+", line.lower()))


def _drop_running_lines(pages: list[list[str]]) -> list[list[str]]:
    n_pages = len(pages)
    if n_pages < 2:
        return pages
    edges = [_edge_indexes(lines) for lines in pages]
    repeated = _repeated_keys(pages, edges)
    # A page number is safe to spot even on a short page: it must run with the page.
    numbered = _page_number_lines(pages, [_edge_indexes(lines, at_least=1) for lines in pages])
    cleaned = []
    for page_index, lines in enumerate(pages):
        drop = {i for i in edges[page_index] if _is_running(_line_key(lines[i]), repeated)}
        drop |= numbered.get(page_index, set())
        cleaned.append([line for i, line in enumerate(lines) if i not in drop])
    return cleaned


def _is_running(key: str, repeated: set[str]) -> bool:
    if key in repeated:
        return True
    # The same header a little shorter or longer: "Journal 2014" on page 1, then
    # "Journal 2014 Page 2 of 10" on the others.
    return len(key) >= 20 and any(
        (other.startswith(key) or key.startswith(other))
        and min(len(key), len(other)) >= 0.8 * max(len(key), len(other))
        for other in repeated
    )


def _edge_indexes(lines: list[str], *, at_least: int = 0) -> list[int]:
    n = len(lines)
    # A short page (a slide, a figure page) is mostly edge: look at fewer of its lines, and
    # at none of a page of one to three lines, where a header could not be told from the body.
    k = max(at_least, min(_EDGE_LINES, n // 4))
    return sorted(set(range(min(k, n))) | set(range(max(n - k, 0), n)))


def _repeated_keys(pages: list[list[str]], edges: list[list[int]]) -> set[str]:
    n_pages = len(pages)
    # Odd and even pages often carry different headers, so a third of the pages is enough.
    threshold = 2 if n_pages <= 6 else max(3, math.ceil(0.3 * n_pages))
    at_edges: Counter[str] = Counter()
    anywhere: Counter[str] = Counter()
    for lines, indexes in zip(pages, edges, strict=True):
        keys = {_line_key(lines[i]) for i in indexes}
        at_edges.update(k for k in keys if sum(c.isalpha() for c in k) >= _MIN_KEY_LETTERS)
        anywhere.update(_line_key(line) for line in lines)
    # A header is printed once a page; a key found on many more lines than pages is content
    # whose lines differ only in their numbers ("Layer 3 accuracy 0.91").
    return {
        key
        for key, count in at_edges.items()
        if count >= threshold and anywhere[key] <= 1.5 * count
    }


def _page_number_lines(pages: list[list[str]], edges: list[list[int]]) -> dict[int, set[int]]:
    """Bare page numbers at page edges whose value runs with the page: same printed offset."""
    found: dict[int, list[tuple[int, int]]] = {}  # offset -> [(page index, line index)]
    for page_index, (lines, indexes) in enumerate(zip(pages, edges, strict=True)):
        for i in indexes:
            if match := _PAGE_NUMBER.match(lines[i]):
                offset = int(match.group(1)) - page_index
                found.setdefault(offset, []).append((page_index, i))
    result: dict[int, set[int]] = {}
    for hits in found.values():
        if len({page for page, _ in hits}) >= 2:
            for page_index, i in hits:
                result.setdefault(page_index, {i})  # one page number per page: the first
    return result


# --- hyphenation ----------------------------------------------------------------------------


class _Evidence:
    """How often each word and each hyphenated compound occurs in one document."""

    def __init__(self, texts: list[str]) -> None:
        words: Counter[str] = Counter()
        compounds: Counter[str] = Counter()
        for text in texts:
            # Halves of broken words must not count as words: cut them out first.
            plain = _PLAIN_BREAK.sub(" ", _MARKED_BREAK.sub(" ", text))
            words.update(w.lower() for w in _WORD.findall(plain))
            compounds.update(m.group(0).lower() for m in _COMPOUND.finditer(plain))
        self.words = words
        self.compounds = compounds

    def dehyphenate(self, text: str) -> str:
        text = _MARKED_BREAK.sub(self._marked, text)
        text = _PLAIN_BREAK.sub(self._plain, text)
        # A marker with no word on one side: a plain hyphen.
        return re.sub(f"[{_LINE_END_MARKERS}]", "-", text)

    def _marked(self, match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        return f"{left}-{right}" if self._keeps_hyphen(left, right) else left + right

    def _plain(self, match: re.Match[str]) -> str:
        left, right = match.group(1), match.group(2)
        if not right[0].islower():  # "GPT-\nPaSa": a line that ends in a hyphen, not a break
            return match.group(0)
        return f"{left}-{right}" if self._keeps_hyphen(left, right) else left + right

    def _keeps_hyphen(self, left: str, right: str) -> bool:
        if not (left[-1].isalpha() and right[0].isalpha()):
            return True  # "482-5", "2-phenylethyl": numbers and chemistry keep the hyphen
        # Only the letters next to the break matter: "(co" + "operate" -> "cooperate".
        left_part = _WORD.findall(left)[-1].lower()
        right_part = _WORD.findall(right)[0].lower()
        joined = self.words[left_part + right_part]
        hyphenated = self.compounds[f"{left_part}-{right_part}"]
        if joined or hyphenated:
            return hyphenated > joined  # "GRO-BID" -> "GROBID" when it is spelled so elsewhere
        if right[0].isupper():
            return True  # "BERT-Base", "non-English"
        if left_part in _HYPHEN_PREFIXES or right_part in _HYPHEN_SUFFIXES:
            return True
        # Two long halves that are words of this document: "automatically-detected".
        return (
            len(left_part) >= 6
            and len(right_part) >= 5
            and self.words[left_part] > 0
            and self.words[right_part] > 0
        )
