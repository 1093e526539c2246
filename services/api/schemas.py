"""Request and response bodies of the API: what /openapi.json documents."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from shared.identity import CORPUS_NAME, CORPUS_NAME_RULE

# Limits on what a request may carry: anything longer is refused (422) naming the field.
MAX_QUERY_CHARS = 4000
MAX_PATH_CHARS = 4096
MAX_CORPUS_CHARS = 64
MAX_PASSWORDS = 20
MAX_PASSWORD_CHARS = 1024


def clean_text(value: str) -> str:
    """Refuse what no part of the service can carry: NUL characters and lone surrogates
    (JSON can spell a lone "\\ud800"; it is not encodable as UTF-8)."""
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (it holds a lone surrogate)") from None
    return value


def not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


_NO_NUL = r"^[^\u0000]*$"
_WORDS = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


def _text(max_chars: int, *, words: bool = False) -> Any:
    """A string of at most `max_chars`, clean; `words`: with some non-space character (a
    pattern in the schema, "must not be empty" when refused)."""
    checks: list[Any] = [StringConstraints(max_length=max_chars), AfterValidator(clean_text)]
    if words:
        checks += [AfterValidator(not_blank), Field(json_schema_extra={"pattern": _WORDS})]
    else:
        checks += [Field(json_schema_extra={"pattern": _NO_NUL})]
    return Annotated[str, *checks]


QueryText = _text(MAX_QUERY_CHARS, words=True)
PathText = _text(MAX_PATH_CHARS, words=True)
PasswordText = _text(MAX_PASSWORD_CHARS)
# The route refuses a bad name with a 400 stating the rule; the schema states it too.
CorpusName = Annotated[
    _text(MAX_CORPUS_CHARS),
    Field(
        description=f"The corpus: {CORPUS_NAME_RULE}.",
        json_schema_extra={"pattern": f"^{CORPUS_NAME.pattern}$"},
    ),
]


class ErrorBody(BaseModel):
    """Every error response."""

    error: str = Field(description="A stable code: invalid_request, not_found, conflict, ...")
    detail: str = Field(description="What went wrong, naming the field or file.")
    error_id: str | None = Field(
        default=None, description="500 only: the id the server log prints beside the traceback."
    )


# A request's fields take their JSON types as they are: `"use_cache": 0` or `"top_k": "5"` is
# refused (422), not guessed at.
STRICT = ConfigDict(strict=True)


def _json_integer(value: Any) -> Any:
    """JSON Schema's integer: 5 or 5.0, never "5" or true."""
    if isinstance(value, (bool, str)):
        raise ValueError("must be an integer")  # noqa: TRY004 - pydantic reports ValueError
    return value


def _top_k(default: int, most: int) -> Any:
    return Field(default=default, ge=1, le=most, strict=False)


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


# ---- ingestion ------------------------------------------------------------------------------


class IngestStart(BaseModel):
    model_config = STRICT
    path: PathText = Field(description="A folder or file inside RAG_CORPUS_ROOT.")
    corpus: CorpusName = "default"
    sync: bool = Field(default=False, description="Remove documents whose files are gone.")
    passwords: list[PasswordText] = Field(
        default_factory=list, max_length=MAX_PASSWORDS, description="Tried on encrypted PDFs."
    )


class RejectedFile(BaseModel):
    file: str
    error: str


class JobAccepted(BaseModel):
    job_id: str
    rejected: list[RejectedFile] = Field(default_factory=list)


class FileOutcome(BaseModel):
    file: str
    outcome: str = Field(description="indexed, unchanged or failed")
    reason: str | None = None
    chunks: int = 0


class FileError(BaseModel):
    file: str
    error: str | None


class JobSummary(BaseModel):
    """A job as listed: everything but the per-file outcomes (GET /ingest/status has them)."""

    job_id: str
    corpus: str
    path: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled")
    stage: str
    progress: float
    message: str
    files_total: int
    files_done: int
    files_failed: int
    files_parsed: int
    chunks_total: int
    chunks_embedded: int
    chunks_indexed: int
    embeddings_computed: int
    embeddings_cached: int
    current_file: str | None
    chunks_per_s: float | None
    eta_s: float | None
    errors: list[FileError]
    workers: dict[str, int]
    sync: bool
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    retry_of: str | None = None
    owner: str | None = Field(default=None, description="Id of the API key that started it.")
    waiting_for: str | None = Field(
        default=None, description="What a running job waits for, when it is not progressing."
    )


class JobRecord(JobSummary):
    """A job with the outcome of each of its files."""

    files: list[FileOutcome]


class JobList(BaseModel):
    jobs: list[JobSummary]


# ---- search and answers ---------------------------------------------------------------------


class SearchRequest(BaseModel):
    model_config = STRICT
    query: QueryText
    corpus: CorpusName = "default"
    top_k: JsonInt = _top_k(10, 1000)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    use_cache: bool = True


class AskRequest(BaseModel):
    model_config = STRICT
    question: QueryText
    corpus: CorpusName = "default"
    top_k: JsonInt = _top_k(5, 50)
    use_cache: bool = True
    stream: bool = Field(
        default=False,
        description="Answer as text/event-stream: `retrieval`, `token`, `citation`, then "
        "`final` (this response object) or `error`.",
    )


class CacheInfo(BaseModel):
    answer_hit: bool
    retrieval_hit: bool
    embed_hits: int
    embed_misses: int


class SearchHit(BaseModel):
    chunk_id: str
    doc_id: str | None
    external_id: str | None
    source: str | None
    title: str | None
    page: int | None
    char_start: int | None
    char_end: int | None
    text: str | None
    score: float


class SearchResponse(BaseModel):
    results: list[SearchHit]
    corpus_version: int
    cache_info: CacheInfo


class Citation(BaseModel):
    n: int
    source: str | None
    title: str | None
    page: int | None
    chunk_id: str
    doc_id: str | None
    text: str | None
    score: float


class AskResponse(BaseModel):
    answer: str = Field(
        description="The answer; [n] cites source n of the retrieval (see `citations`), "
        "and a sentence its sources do not support ends with [unsupported]."
    )
    citations: list[Citation] = Field(description="The cited sources, in order of first citation.")
    generator: str = Field(description="extractive, openai or ollama (RAG_GENERATOR).")
    model: str | None = Field(description="The LLM's model; null for the extractive answer.")
    abstained: bool = Field(
        description="No indexed passage was close enough to the question: nothing was generated."
    )
    fallback: bool = Field(
        description="The LLM failed: this is the extractive answer. A client that streamed "
        "tokens replaces them with this answer."
    )
    fallback_reason: str | None = Field(
        description="Why: connection_refused, first_token_timeout, total_timeout, http_5xx, "
        "http_429, stream_error or bad_response."
    )
    invalid_citations: int = Field(description="Citation numbers with no such source (dropped).")
    unsupported_sentences: int = Field(
        description="Cited sentences whose words are mostly absent from their sources."
    )
    cache_info: CacheInfo


# ---- chat -----------------------------------------------------------------------------------


SessionId = Annotated[str, StringConstraints(max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class ChatRequest(BaseModel):
    model_config = STRICT
    message: QueryText
    corpus: CorpusName | None = Field(
        default=None, description="Default: the session's corpus, or 'default' for a new one."
    )
    session_id: SessionId | None = Field(default=None, description="Omitted: a new session.")
    top_k: JsonInt = _top_k(5, 50)
    use_cache: bool = True
    stream: bool = Field(default=False, description="Answer as events, as POST /ask does.")


class ChatResponse(AskResponse):
    session_id: str
    rewritten_query: str | None = Field(
        description="The standalone question searched beside the message, when the message "
        "was a follow-up (a pronoun pointing back, or four words or fewer)."
    )


class ChatMessage(BaseModel):
    role: Literal["user", "assistant"]
    content: str
    at: float = Field(description="Unix time the message was stored.")
    corpus: str | None = None
    rewritten_query: str | None = None
    citations: list[Citation] | None = None
    cache_info: CacheInfo | None = None
    generator: str | None = None
    model: str | None = None
    abstained: bool | None = None
    fallback: bool | None = None
    fallback_reason: str | None = None
    invalid_citations: int | None = None
    unsupported_sentences: int | None = None


class ChatSessionView(BaseModel):
    session_id: str
    corpus: str
    generator: str
    model: str | None
    created: float
    messages: list[ChatMessage]


# ---- API keys -------------------------------------------------------------------------------


class KeyCreate(BaseModel):
    role: Literal["reader", "writer", "admin"]
    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    corpora: list[str] | None = Field(
        default=None, description="The only corpora the key may touch; omitted: every corpus."
    )


class KeyInfo(BaseModel):
    id: str
    name: str
    role: str
    corpora: list[str] | None
    created_at: float
    masked: str = Field(description="The key's visible prefix; the secret is never shown again.")


class KeyCreated(KeyInfo):
    key: str = Field(description="The key itself: shown this once, stored only as a hash.")


class KeyList(BaseModel):
    keys: list[KeyInfo]


# ---- corpora, cache, health -----------------------------------------------------------------


class CorpusSummary(BaseModel):
    name: str
    documents: int
    chunks: int
    version: int


class CorpusList(BaseModel):
    corpora: list[CorpusSummary]


class TierStats(BaseModel):
    keys: int
    bytes: int
    hits: int
    misses: int
    hit_rate: float
    computed: int = 0


class CacheTotals(BaseModel):
    keys: int
    bytes: int
    hits: int
    misses: int
    hit_rate: float


class CacheStatsResponse(BaseModel):
    tiers: dict[str, TierStats]
    totals: CacheTotals


class PurgeResponse(BaseModel):
    purged: dict[str, int] = Field(description="Keys removed per tier.")


class HealthReport(BaseModel):
    status: Literal["ok", "degraded"]
    redis: dict[str, Any] | None = Field(
        default=None, description="Internals are shown when auth is off, or to an admin key."
    )
    store: dict[str, Any] | None = None
    workers: dict[str, Any] | None = None
    queues: dict[str, int] | None = None
    queries: dict[str, int] | None = Field(
        default=None, description="Cold queries running and waiting, and the limit."
    )
