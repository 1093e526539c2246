"""Pages to chunks the embedding model reads whole: sentence-aware, overlapping, page-bound.

Each page is tokenised once, with character offsets; all packing then happens on token
indices, so a chunk's size is known without tokenising it again. A chunk ends where a sentence
ends when one lies in its second half, else at a word, and only a single word longer than a
whole chunk is cut between word pieces (its pieces are then re-counted). Neighbours on a page
share about `overlap_tokens` word pieces, starting at a sentence or word start.

Each chunk also carries its lexical context: up to `context_tokens` word pieces of the page
before and after it, cut at word starts. The dense vector reads the chunk alone; its BM25
vector reads the chunk with that context. Dense retrieval is sharper over short chunks and
BM25 over long ones: on SciFact train (bench/tune_scifact.py), 128-token chunks with 36 word
pieces of context each side (BM25 then reads ~200, the granularity it scored best at) gave
hybrid nDCG@10 0.7464, against 0.7397 for 200-token chunks read whole by both and 0.7410 for
128-token chunks read whole by both.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.documents import Chunk, ParsedDocument

__all__ = ["EMBEDDING_WORD_PIECES", "Chunker"]

# What the embedding model reads of one text: 256 word pieces, less [CLS] and [SEP].
EMBEDDING_WORD_PIECES = 254

# A sentence ends at . ! ? (and closing quotes/brackets) before a capital, digit or opening
# mark, or at a blank line; `next` is where the following sentence starts. The period of a
# common abbreviation or an initial ("et al.", "Fig.", "S.") does not end one.
_SENTENCE_BREAK = re.compile(
    r"""(?P<stop>[.!?]["'”’)\]]*)\s+(?=["'“‘(\[]?[A-Z0-9])|\n[^\S\n]*\n\s*"""
)
_ABBREVIATION = re.compile(
    r"(?:\b(?:e\.g|i\.e|et al|etc|cf|vs|viz|approx|fig|figs|eq|eqs|ref|refs|sec|tab|no|vol|"
    r"pp|dr|mr|mrs|ms|prof|st|jr|inc|ltd|resp|ca|al)\.|(?<![\w.])[A-Z]\.)[\"'”’)\]]*$",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Tokens:
    """One page's word pieces: character spans and where words start."""

    starts: list[int]
    ends: list[int]
    word_start: list[bool]  # token i begins a new pre-tokenised word

    def __len__(self) -> int:
        return len(self.starts)


class Chunker:
    """Split documents into chunks of at most `max_tokens` word pieces (no special tokens)."""

    def __init__(
        self, *, tokenizer: Any, max_tokens: int, overlap_tokens: int, context_tokens: int = 0
    ) -> None:
        if max_tokens < 1:
            raise ValueError("max_tokens must be at least 1")
        if not 0 <= overlap_tokens < max_tokens:
            raise ValueError("overlap_tokens must be at least 0 and smaller than max_tokens")
        if context_tokens < 0:
            raise ValueError("context_tokens must be at least 0")
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.context_tokens = context_tokens
        self._encoder = _plain_encoder(tokenizer)

    @classmethod
    def from_model_path(
        cls, path: str | Path, *, max_tokens: int, overlap_tokens: int, context_tokens: int = 0
    ) -> Chunker:
        """The model's fast tokenizer: its tokenizer.json read by `tokenizers` directly (the
        same pieces and offsets as transformers' AutoTokenizer, on 6,007 SciFact titles and
        abstracts, without importing transformers and, through it, torch: ~3 CPU s and
        ~400 MB per worker process), or AutoTokenizer for a model saved without one."""
        file = Path(path) / "tokenizer.json"
        if file.is_file():
            from tokenizers import Tokenizer

            tokenizer: Any = Tokenizer.from_file(str(file))
        else:
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(path))
        return cls(
            tokenizer=tokenizer,
            max_tokens=max_tokens,
            overlap_tokens=overlap_tokens,
            context_tokens=context_tokens,
        )

    def count_tokens(self, text: str) -> int:
        """Word pieces in `text`, without special tokens: what `Chunk.n_tokens` counts."""
        return len(self._encoder.encode(text, add_special_tokens=False).ids)

    def titled(self, title: str, text: str, *, n_tokens: int | None = None) -> str:
        """What is embedded for a chunk: the document's title, a newline, then the chunk text.

        The title is cut (at a word start) so that title and text together fit the
        `EMBEDDING_WORD_PIECES` the model reads: the model truncates from the end, and it
        must lose the title's tail rather than the chunk's. `n_tokens` is the text's count
        when known (`Chunk.n_tokens`). Word pieces of the two add up, since the tokenizer
        splits at the newline.
        """
        title = title.strip()
        if not title:
            return text
        budget = EMBEDDING_WORD_PIECES - (self.count_tokens(text) if n_tokens is None else n_tokens)
        if budget <= 0:
            return text
        tokens = self._tokens(title)
        if len(tokens) > budget:
            # The last word start that leaves at most `budget` pieces before it.
            end = next((i for i in range(budget, 0, -1) if tokens.word_start[i]), budget)
            cut = title[: tokens.ends[end - 1]].rstrip()
            # Only a single word longer than the budget is cut between pieces, which can
            # re-tokenise differently: shrink until it fits.
            while end > 1 and self.count_tokens(cut) > budget:
                end -= 1
                cut = title[: tokens.ends[end - 1]].rstrip()
            title = cut
        return f"{title}\n{text}"

    def chunk(self, doc: ParsedDocument) -> list[Chunk]:
        chunks: list[Chunk] = []
        for page in doc.pages:
            for start, end, n_tokens, before, after in self._page_spans(page.text):
                chunks.append(
                    Chunk(
                        index=len(chunks),
                        page=page.number,
                        char_start=start,
                        char_end=end,
                        text=page.text[start:end],
                        n_tokens=n_tokens,
                        before=page.text[before:start],
                        after=page.text[end:after],
                    )
                )
        return chunks

    # --- one page ---------------------------------------------------------------------------

    def _page_spans(self, text: str) -> list[tuple[int, int, int, int, int]]:
        """(char_start, char_end, n_tokens, context_start, context_end) of each chunk of one
        page's text."""
        if not text.strip():
            return []
        tokens = self._tokens(text)
        n = len(tokens)
        if n == 0:
            return []
        sentence_starts = _sentence_start_tokens(text, tokens)
        spans: list[tuple[int, int, int, int, int]] = []
        start = 0
        while start < n:
            end = self._chunk_end(start, tokens, sentence_starts)
            char_start, char_end = tokens.starts[start], tokens.ends[end - 1]
            n_tokens = end - start
            if not (tokens.word_start[start] and (end == n or tokens.word_start[end])):
                # Cut inside a word: its pieces change when tokenised alone. Re-count, and
                # shrink until the true count fits.
                n_tokens = self.count_tokens(text[char_start:char_end])
                while n_tokens > self.max_tokens and end - start > 1:
                    end -= 1
                    char_end = tokens.ends[end - 1]
                    n_tokens = self.count_tokens(text[char_start:char_end])
            spans.append((char_start, char_end, n_tokens, *self._context(start, end, tokens)))
            if end >= n:
                break
            next_start = self._next_start(start, end, tokens, sentence_starts)
            if self._chunk_end(next_start, tokens, sentence_starts) <= end:
                # The overlap would make a chunk that stops where this one did (the next word
                # is too long to join it): start right after this chunk instead.
                next_start = end
            start = next_start
        return spans

    def _context(self, start: int, end: int, tokens: _Tokens) -> tuple[int, int]:
        """Character span of tokens [start, end) widened by up to `context_tokens` word
        pieces each side, to whole words (a word the limit falls inside is left out)."""
        n = len(tokens)
        first = max(start - self.context_tokens, 0)
        while first < start and not tokens.word_start[first]:
            first += 1
        last = min(end + self.context_tokens, n)  # exclusive
        while last > end and last < n and not tokens.word_start[last]:
            last -= 1
        return tokens.starts[first], tokens.ends[last - 1]

    def _tokens(self, text: str) -> _Tokens:
        encoding = self._encoder.encode(text, add_special_tokens=False)
        starts: list[int] = []
        ends: list[int] = []
        word_start: list[bool] = []
        previous_word = None
        for (start, end), word in zip(encoding.offsets, encoding.word_ids, strict=True):
            if end <= start:  # nothing of the text (should not happen without specials)
                continue
            starts.append(start)
            ends.append(end)
            word_start.append(word != previous_word or word is None)
            previous_word = word
        return _Tokens(starts, ends, word_start)

    def _chunk_end(self, start: int, tokens: _Tokens, sentence_starts: list[int]) -> int:
        """Token index just past the chunk that begins at token `start`."""
        limit = start + self.max_tokens
        if limit >= len(tokens):
            return len(tokens)
        # The last sentence start that still fits, if it leaves the chunk at least half full.
        i = bisect.bisect_right(sentence_starts, limit) - 1
        if i >= 0 and sentence_starts[i] >= start + max(self.max_tokens // 2, 1):
            return sentence_starts[i]
        for end in range(limit, start, -1):  # else the last word start that fits
            if tokens.word_start[end]:
                return end
        return limit  # one word longer than a whole chunk: cut between its pieces

    def _next_start(self, start: int, end: int, tokens: _Tokens, sentence_starts: list[int]) -> int:
        """Where the next chunk begins: about `overlap_tokens` before `end`."""
        if self.overlap_tokens == 0:
            return end
        target = max(end - self.overlap_tokens, start + 1)
        # Prefer a sentence start inside the overlap window, then a word start.
        i = bisect.bisect_left(sentence_starts, target)
        if i < len(sentence_starts) and sentence_starts[i] < end:
            return sentence_starts[i]
        for candidate in range(target, end):
            if tokens.word_start[candidate]:
                return candidate
        return end


def _sentence_start_tokens(text: str, tokens: _Tokens) -> list[int]:
    """Sorted token indices at which a new sentence starts (never 0)."""
    result: list[int] = []
    for match in _SENTENCE_BREAK.finditer(text):
        if match.group("stop") is not None:
            before = text[max(0, match.start() - 12) : match.end("stop")]
            if _ABBREVIATION.search(before):
                continue
        index = bisect.bisect_left(tokens.starts, match.end())
        if 0 < index < len(tokens) and (not result or result[-1] != index):
            result.append(index)
    return result


def _plain_encoder(tokenizer: Any) -> Any:
    """The fast tokenizer's Rust backend, with any truncation or padding switched off.

    Model repos often save `tokenizer.json` with truncation at 128 and padding on; a chunker
    that inherited those would count wrong and cut pages short.
    """
    from tokenizers import Tokenizer

    backend = tokenizer if isinstance(tokenizer, Tokenizer) else getattr(
        tokenizer, "backend_tokenizer", None
    )
    if backend is None:
        raise TypeError("Chunker needs a fast (Rust-backed) Hugging Face tokenizer")

    encoder = Tokenizer.from_str(backend.to_str())
    encoder.no_truncation()
    encoder.no_padding()
    return encoder
