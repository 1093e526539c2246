"""Citation markers in LLM output, checked in code rather than trusted.

Sources are numbered [1]..[n]. Whatever the model writes, the answer keeps one form, `[1][2]`:
`[1, 2]`, `[1,2]`, `[1-2]`, `[1 and 2]`, `【1】`, `[Source 1]` and a citing `(1)` (one followed by
punctuation, another marker or the end, so that an enumeration "(1) the first" stays text) are
rewritten; a number outside 1..n is dropped with its marker's leading space and counted in
`invalid_citations`. Numbers of 4+ digits ("[2020]") are not markers.

`CitationFilter` does this on a stream: it releases text as soon as no marker can span the cut,
holding back a possible marker start ("[", "[1", "【", "(2)" awaiting its next character) and
the whitespace before it, and reports each source number when it is first cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_NUMBERS = r"\d{1,3}(?:\s*(?:,|;|-|–|—|and|&)\s*\d{1,3})*"
_WORD = r"(?:(?:source|src|ref|doc(?:ument)?|passage)\s*#?\s*)?"
_MARKER = re.compile(
    rf"(?P<space>\s*)(?:"
    rf"\[\s*{_WORD}(?P<square>{_NUMBERS})\s*\]"
    rf"|【\s*{_WORD}(?P<cjk>{_NUMBERS})\s*】"
    rf"|\(\s*{_WORD}(?P<paren>{_NUMBERS})\s*\)(?=\s*(?:[.,;:!?\[【]|$))"
    rf")",
    re.IGNORECASE,
)
# Text that may still grow into a marker: an opener with marker-like characters and no closer
# yet, or a closed "(n)" whose next character decides whether it cites.
_PARTIAL = re.compile(r"(?:[\[【(][\w\s,;#&\-–—]{0,24}|\(\s*[\w\s,;#&\-–—]{0,24}\)\s*)$")
_SPLIT = re.compile(r"\s*(?:,|;|and|&)\s*")
_RANGE = re.compile(r"(\d+)\s*[-–—]\s*(\d+)")
_MAX_RANGE = 20
CANONICAL = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class TextDelta:
    """Answer text, citation markers already in `[n]` form."""

    text: str


@dataclass(frozen=True, slots=True)
class Citation:
    """Source `n` is cited for the first time in the text released so far."""

    n: int


@dataclass(frozen=True, slots=True)
class RepairedText:
    text: str
    cited: tuple[int, ...]  # valid numbers in order of first citation
    invalid_citations: int


def _numbers(spec: str) -> list[int]:
    numbers: list[int] = []
    for part in _SPLIT.split(spec.strip()):
        bounds = _RANGE.fullmatch(part)
        if bounds is None:
            numbers.extend(int(d) for d in re.findall(r"\d+", part))
            continue
        low, high = int(bounds[1]), int(bounds[2])
        if low <= high and high - low <= _MAX_RANGE:
            numbers.extend(range(low, high + 1))
        else:
            numbers.extend((low, high))
    return numbers


@dataclass
class CitationFilter:
    """Feed deltas in, get `TextDelta`/`Citation` events out, in answer order."""

    n_sources: int
    invalid_citations: int = 0
    cited: list[int] = field(default_factory=list)
    _pending: str = ""
    _dropped_space: str = ""  # the space of a dropped marker, kept for one right after it
    _released: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything released so far."""
        return "".join(self._released)

    def feed(self, delta: str) -> list[TextDelta | Citation]:
        self._pending += delta
        held = _PARTIAL.search(self._pending)
        cut = held.start() if held else len(self._pending)
        while cut > 0 and self._pending[cut - 1].isspace():
            cut -= 1
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return self._rewrite(ready)

    def finish(self) -> list[TextDelta | Citation]:
        ready, self._pending = self._pending, ""
        return self._rewrite(ready)

    def _rewrite(self, text: str) -> list[TextDelta | Citation]:
        events: list[TextDelta | Citation] = []
        out: list[str] = []
        last = 0
        for match in _MARKER.finditer(text):
            if match.start() != last:
                self._dropped_space = ""
            out.append(text[last : match.start()])
            last = match.end()
            spec = match["square"] or match["cjk"] or match["paren"]
            valid: list[int] = []
            for n in _numbers(spec):
                if not 1 <= n <= self.n_sources:
                    self.invalid_citations += 1
                elif n not in valid:
                    valid.append(n)
            space = match["space"] or self._dropped_space
            self._dropped_space = "" if valid else space
            if not valid:
                continue
            out.append(space + "".join(f"[{n}]" for n in valid))
            fresh = [n for n in valid if n not in self.cited]
            if fresh:
                events.append(TextDelta("".join(out)))
                out = []
                self.cited.extend(fresh)
                events.extend(Citation(n) for n in fresh)
        if last != len(text):
            self._dropped_space = ""
        out.append(text[last:])
        tail = "".join(out)
        if tail:
            events.append(TextDelta(tail))
        events = [e for e in events if not (isinstance(e, TextDelta) and not e.text)]
        self._released.extend(e.text for e in events if isinstance(e, TextDelta))
        return events


def repair_citations(text: str, *, n_sources: int) -> RepairedText:
    """The whole-text form of `CitationFilter`: the same result as streaming `text` through it."""
    citations = CitationFilter(n_sources=n_sources)
    citations.feed(text)
    citations.finish()
    return RepairedText(
        text=citations.text,
        cited=tuple(citations.cited),
        invalid_citations=citations.invalid_citations,
    )
