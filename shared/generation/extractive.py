"""Which sentences of a chunk may stand as an extractive answer: prose, not PDF debris.

PDF text mixes prose with figure labels ("Crawler Paper Queue User Query Selector ... Figure 1:
Architecture of PaSa."), table rows, captions, equations, code, footnote URLs and reference
lists. `is_answer_sentence` rejects a sentence that
- holds a caption label ("Figure 3:", "Table 2:", "Fig. 1|") or starts with one ("Figure 1.");
- looks like a piece of a reference entry: "[12] A. Author", "arXiv preprint", "In Proceedings
  of", "pages 84–91", "11(2):181–217", a DOI, "URL http", or a bare list of author names;
- has fewer than 4 lowercase words, or lowercase words make up less than 40% of its tokens;
- has a run of 7+ Capitalised tokens (figure label runs, author lists, affiliations);
- has more than a quarter of its tokens plain numbers (table rows; "GPT-4o" is a name);
- has more than a fifth of its tokens that are neither words, names nor numbers (equations,
  code: "=", ">>>", "τt1:t2−1");
- has more than two bracketed labels other than citations ("[Search] [Expand] [Stop]"), or
  two or more URLs.
On pasa, papermage, 2304.02623 and 1903.10676 (1,004 page sentences) this keeps 608 and
rejects 396. Read one by one, the prose among the rejected is short ("The training runs on 8
NVIDIA-H100 GPUs."), a fragment ("For example, Lincker et al."), or has a section heading, a
formula, a URL or an arXiv stamp glued to it (tests/unit/test_generation_extractive.py).

`answer_sentences` also drops every sentence of a chunk that reads as a reference list (two or
more reference pieces making a quarter of its sentences, or one among 60% non-prose lines) and
whatever follows a "References" heading inside the chunk: titles in a bibliography ("Language
models are few-shot learners.") pass for prose on their own. Over the 17 shared papers in
200-token chunks, the chunk rule drops 54 of 4,327 prose sentences before a detected References
heading: all are bibliography entries under a heading the check missed, or a title page's
licence text. After the heading, a few titles still slip through in chunks that carry no other
reference signal.
"""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_MIN_CHARS = 25

_CAPTION = re.compile(r"\b(?:fig(?:ure)?s?\.?|table|tab\.)\s*\d+[a-z]?\s*[:|]", re.IGNORECASE)
_CAPTION_START = re.compile(r"^(?:fig(?:ure)?\.?|table)\s*\d+[a-z]?[.:]", re.IGNORECASE)
_REFERENCE = re.compile(
    r"^\[\d+\]\s+(?:[A-Z]\.\s*)+[A-Z]|^\[\d+\]\s+[A-Z][\w'’\-]+,\s+[A-Z]"
    r"|arxiv preprint|\barxiv:\s*\d|\bin proceedings of\b|\bproceedings of the\b"
    r"|\bpp?\.\s*\d+\s*[-–]\s*\d+|\bpages?\s+\d+\s*[-–]\s*\d+|\bdoi\s*[:.]|\bdoi\.org\b"
    r"|\burl\s+https?://|\bvol(?:ume)?\.?\s+\d+\s*,|\bassociation for computational linguistics"
    r"|\bet al\.,?\s*(?:19|20)\d\d[a-z]?\.$|\b\d+\s*\(\d+\)\s*:\s*\d+"
    r"|,\s*\d+\s*,\s*(?:19|20)\d\d\.?$|\((?:19|20)\d\d\),\s*\d+\s*[-–]\s*\d+",
    re.IGNORECASE,
)
# "A. Author, B. Author, and C. Author." / "Author, A., Author, B." : names and commas only.
_NAME_PART = r"[A-Z][\w'’\-]*\.?"
_AUTHORS = re.compile(
    rf"^(?:{_NAME_PART}\s+){{0,4}}{_NAME_PART}"
    rf"(?:\s*,\s*(?:and\s+)?(?:{_NAME_PART}\s+){{0,4}}{_NAME_PART})+"
    rf"(?:\s*,?\s*(?:and\s+|et al\.?)(?:(?:{_NAME_PART}\s+){{0,4}}{_NAME_PART})?)?\.?$"
)
_REFERENCES_HEADING = re.compile(r"(?:^|\s)(?:References|Bibliography)\s+[A-Z\[]")
_LOWER_WORD = re.compile(r"^[a-z][a-z'’\-]*$")
_NUMBER = re.compile(r"^[-+±~]?\d[\d.,%×x]*$")
_NAME = re.compile(r"^[A-Za-z][\w'’\-@.%+/]*$")
_BRACKETED = re.compile(r"\[[^\]\d][^\]]*\]")
_URL = re.compile(r"https?://|www\.")
_EDGE_PUNCTUATION = "\"'“”‘’()[]{},.;:!?*†‡§/-–—·…"
_JOINERS = frozenset({"/", "-", "–", "—", "&"})


def split_sentences(text: str) -> list[str]:
    """Sentences of a chunk, whitespace collapsed, fragments under 25 characters dropped."""
    sentences = (" ".join(s.split()) for s in _SENTENCE_END.split(text))
    return [s for s in sentences if len(s) >= _MIN_CHARS]


def _tokens(sentence: str) -> list[str]:
    """Tokens without edge punctuation; bare symbols ("=", ">>>", "(") stay as "" entries."""
    return [t.strip(_EDGE_PUNCTUATION) for t in sentence.split() if t not in _JOINERS]


def _capitalised_run(tokens: list[str]) -> int:
    """Longest run of Capitalised tokens (label runs, author lists); numbers, symbols and
    all-caps words (acronyms, headings) neither extend nor break it."""
    longest = run = 0
    for token in tokens:
        if _LOWER_WORD.match(token):
            run = 0
        elif token[:1].isupper() and not token.isupper():
            run += 1
            longest = max(longest, run)
    return longest


def looks_like_reference(sentence: str) -> bool:
    """A piece of a bibliography entry: venue, pages, arXiv id, DOI, or a list of authors."""
    return bool(_REFERENCE.search(sentence) or _AUTHORS.match(sentence))


def is_answer_sentence(sentence: str) -> bool:
    """True when `sentence` reads as prose that can stand alone in an answer."""
    if _CAPTION.search(sentence) or _CAPTION_START.match(sentence):
        return False
    if looks_like_reference(sentence) or len(_URL.findall(sentence)) >= 2:
        return False
    tokens = _tokens(sentence)
    if not tokens:
        return False
    lower = sum(bool(_LOWER_WORD.match(t)) for t in tokens)
    numbers = sum(bool(_NUMBER.match(t)) for t in tokens)
    other = sum(not (_NAME.match(t) or _NUMBER.match(t)) for t in tokens)
    n = len(tokens)
    return (
        lower >= 4
        and lower / n >= 0.4
        and numbers / n <= 0.25
        and other / n <= 0.2
        and _capitalised_run(tokens) < 7
        and len(_BRACKETED.findall(sentence)) <= 2
    )


def is_reference_list(sentences: list[str]) -> bool:
    """True when the sentences read as a bibliography rather than prose: two or more reference
    pieces making a quarter of them, or one among mostly non-prose lines."""
    if not sentences:
        return False
    references = sum(looks_like_reference(s) for s in sentences)
    debris = sum(not is_answer_sentence(s) for s in sentences)
    n = len(sentences)
    return (references >= 2 and references / n >= 0.25) or (references >= 1 and debris / n >= 0.6)


def answer_sentences(text: str) -> list[str]:
    """The sentences of a chunk that may be quoted as an answer, in order."""
    heading = _REFERENCES_HEADING.search(text)
    if heading is not None:
        text = text[: heading.start()]
    sentences = split_sentences(text)
    if is_reference_list(sentences):
        return []
    return [s for s in sentences if is_answer_sentence(s)]
