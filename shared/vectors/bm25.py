"""BM25 as sparse vectors: the document side carries the term-frequency part, the store the IDF.

A chunk's sparse vector holds, per token, `tf*(k1+1) / (tf + k1*(1-b+b*len/avg_len))`; a query's
holds 1.0 per distinct token. A store whose sparse vector has the IDF modifier (Qdrant's
`Modifier.IDF`) multiplies each query term by its IDF, so the dot product is the BM25 score.

Token indices are a stable 31-bit hash of the token (the first four bytes of its blake2b
digest), the same in every process and on every machine, so nothing but the settings needs
to be shared between the workers that index and the API that queries.
"""

from __future__ import annotations

import hashlib
import re
import threading
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import lru_cache
from types import EllipsisType

import Stemmer  # type: ignore[import-not-found]  # PyStemmer ships no type hints

from shared.settings import Bm25Settings
from shared.vectors.store.base import SparseVector

# NLTK's English list, plus the fragments our apostrophe splitting leaves behind.
ENGLISH_STOPWORDS: frozenset[str] = frozenset(
    """
    a about above after again against ain all am an and any are aren as at be because been
    before being below between both but by can couldn d did didn do does doesn doing don down
    during each few for from further had hadn has hasn have haven having he her here hers
    herself him himself his how i if in into is isn it its itself just ll m ma me mightn more
    most mustn my myself needn no nor not now o of off on once only or other our ours
    ourselves out over own re s same shan she should shouldn so some such t than that the
    their theirs them themselves then there these they this those through to too under until
    up ve very was wasn we were weren what when where which while who whom why will with won
    wouldn y you your yours yourself yourselves
    """.split()  # noqa: SIM905 - a word list reads better as text
)

# A run of letters/digits, optionally joined to more runs by '-' or '.' ("covid-19", "0.05",
# "state-of-the-art"). Apostrophes separate ("patient's" -> "patient", "s").
_COMPOUND = re.compile(r"[^\W_]+(?:[-.][^\W_]+)*")
_PARTS = re.compile(r"[-.]")
_DECIMAL = re.compile(r"\d+(?:\.\d+)+")


def token_index(token: str) -> int:
    """The sparse dimension of `token`: a 31-bit blake2b hash, identical across processes."""
    return _token_index(token)


@lru_cache(maxsize=1 << 18)
def _token_index(token: str) -> int:
    digest = hashlib.blake2b(token.encode("utf-8"), digest_size=4).digest()
    return int.from_bytes(digest, "big") & 0x7FFF_FFFF


def _split_compound(compound: str) -> list[str]:
    """Keep identifiers that mix letters and digits whole, split plain hyphenated words.

    "covid-19", "COVID19" and "sars-cov-2" become "covid19" and "sarscov2" (one token, whatever
    the spelling); "0.05" stays a number; "state-of-the-art" and "e.g." become their words.
    """
    if _DECIMAL.fullmatch(compound):
        return [compound]
    parts = [p for p in _PARTS.split(compound) if p]
    if len(parts) > 1 and any(c.isdigit() for c in compound) and any(c.isalpha() for c in compound):
        return ["".join(parts)]
    return parts


class Bm25Encoder:
    """Turns text into BM25 sparse vectors. Cheap to build; safe to share between threads."""

    def __init__(
        self,
        settings: Bm25Settings | None = None,
        *,
        k1: float | None = None,
        b: float | None = None,
        avg_len: float | None = None,
        stemmer: str | None | EllipsisType = ...,
        stopwords: bool | None = None,
    ) -> None:
        """Take each parameter from `settings` (default: the field defaults) unless given here.

        `stemmer` is a Snowball algorithm name ("english"), or None (or "none") for no
        stemming; `...` means "as in settings".
        """
        base = settings if settings is not None else Bm25Settings.model_construct()
        self.k1 = float(k1 if k1 is not None else base.k1)
        self.b = float(b if b is not None else base.b)
        self.avg_len = float(avg_len if avg_len is not None else base.avg_len)
        name = base.stemmer if stemmer is ... else stemmer
        self.stemmer_name: str | None = None if name in (None, "", "none", "None") else name
        self.stopwords: frozenset[str] = (
            ENGLISH_STOPWORDS
            if (stopwords if stopwords is not None else base.stopwords)
            else frozenset()
        )
        if self.k1 <= 0:
            raise ValueError(f"BM25 k1 must be positive, got {self.k1}")
        if not 0 <= self.b <= 1:
            raise ValueError(f"BM25 b must be within [0, 1], got {self.b}")
        if self.avg_len <= 0:
            raise ValueError(f"BM25 avg_len must be positive, got {self.avg_len}")
        if self.stemmer_name is not None and self.stemmer_name not in Stemmer.algorithms():
            raise ValueError(
                f"unknown Snowball stemmer {self.stemmer_name!r}; "
                f"choose one of {', '.join(Stemmer.algorithms())} or none"
            )
        # A PyStemmer instance must not be used by two threads at once: one per thread.
        self._local = threading.local()

    def _stem(self, words: list[str]) -> list[str]:
        if self.stemmer_name is None:
            return words
        stemmer: Stemmer.Stemmer | None = getattr(self._local, "stemmer", None)
        if stemmer is None:
            stemmer = self._local.stemmer = Stemmer.Stemmer(self.stemmer_name)
        return list(stemmer.stemWords(words))

    def tokenize(self, text: str) -> list[str]:
        """Lowercased, NFKC-folded words in order; stop words dropped and stems taken if set."""
        text = unicodedata.normalize("NFKC", text).lower()
        words = [
            word
            for compound in _COMPOUND.findall(text)
            for word in _split_compound(compound)
            if word not in self.stopwords
        ]
        return self._stem(words)

    def encode_document(self, text: str) -> SparseVector:
        """The BM25 term-frequency part of every token of `text` (IDF is left to the store)."""
        tokens = self.tokenize(text)
        if not tokens:
            return SparseVector(indices=[], values=[])
        norm = self.k1 * (1 - self.b + self.b * len(tokens) / self.avg_len)
        weights = (
            (token, tf * (self.k1 + 1) / (tf + norm)) for token, tf in Counter(tokens).items()
        )
        return _merge(weights)

    def encode_query(self, text: str) -> SparseVector:
        """Weight 1.0 per distinct token of `text`."""
        return _merge((token, 1.0) for token in dict.fromkeys(self.tokenize(text)))


def _merge(weights: Iterable[tuple[str, float]]) -> SparseVector:
    """Hash tokens to indices, summing the rare colliding ones, in ascending index order."""
    by_index: dict[int, float] = {}
    for token, weight in weights:
        index = _token_index(token)
        by_index[index] = by_index.get(index, 0.0) + weight
    indices = sorted(by_index)
    return SparseVector(indices=indices, values=[by_index[i] for i in indices])
