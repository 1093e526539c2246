"""The domain objects of ingestion: parsed documents, their pages and their chunks."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Page:
    """One page of text; `number` is 1-based. Non-paginated formats have one page."""

    number: int
    text: str


@dataclass(frozen=True, slots=True)
class ParsedDocument:
    title: str
    format: str  # "pdf" | "markdown" | "text" | "html" | "jsonl-record"
    pages: list[Page]
    external_id: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of one page, small enough for the embedding model to read whole."""

    index: int  # position in the document, 0-based
    page: int  # 1-based
    char_start: int  # offsets into that page's text
    char_end: int
    text: str
    n_tokens: int
    # What BM25 reads around it: the page's text before and after the chunk, up to the
    # chunker's `context_tokens` word pieces each side, cut at word starts ("" when 0).
    before: str = ""
    after: str = ""

    @property
    def lexical_text(self) -> str:
        """The chunk with its lexical context: what its BM25 vector is made from."""
        return self.before + self.text + self.after
