"""Settings for every rag-papers process: one object of small sections, read from `RAG_*`.

Each section reads its own flat environment names (`RAG_REDIS_URL`, `RAG_MAX_FILE_MB`, ...),
so users never see the nesting. Build it once at an entry point and pass it down.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

log = logging.getLogger(__name__)


def _section(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, extra="ignore", populate_by_name=True)


class RedisSettings(BaseSettings):
    model_config = _section("RAG_REDIS_")
    url: str | None = Field(
        default=None,
        description="Redis URL. Unset: `rag up` starts an embedded Valkey under RAG_DATA_DIR.",
    )


class QdrantSettings(BaseSettings):
    model_config = _section("RAG_QDRANT_")
    url: str | None = Field(
        default=None,
        description="Qdrant server URL. Unset: an embedded store under RAG_DATA_DIR, "
        "owned by the API process.",
    )
    api_key: str | None = Field(default=None, description="Qdrant API key, if the server has one.")
    local_engine: str = Field(
        default="edge",
        description="Embedded engine: 'edge' (qdrant-edge, Rust) or 'client' "
        "(qdrant-client local mode, pure Python and slow).",
    )
    optimize_min_chunks: int = Field(
        default=5000,
        ge=0,
        description="Embedded store: after an ingestion job, build the HNSW index of a corpus "
        "that holds at least this many chunks (in a child process; queries keep being served). "
        "Smaller corpora stay a brute-force scan, which is as fast there.",
    )
    hnsw_m: int = Field(
        default=16,
        ge=4,
        le=128,
        description="Embedded (edge) store: HNSW links per point, used when `optimize` builds "
        "the index. More links: better recall, more memory and build time.",
    )
    hnsw_ef_construct: int = Field(
        default=100,
        ge=4,
        description="Embedded (edge) store: candidates considered while building the HNSW index.",
    )
    hnsw_ef: int = Field(
        default=256,
        ge=1,
        description="Embedded (edge) store: candidates an HNSW dense search explores (at least "
        "the limit asked for). Recall@10 against exact search on SciFact vectors "
        "(bench/hnsw_recall.py): 0.9997 at 12k chunks, 0.994 at 100k; ef 128 gave 0.999 and "
        "0.987.",
    )

    @field_validator("local_engine")
    @classmethod
    def _known_engine(cls, v: str) -> str:
        if v not in {"edge", "client"}:
            raise ValueError("RAG_QDRANT_LOCAL_ENGINE must be 'edge' or 'client'")
        return v


class EmbeddingSettings(BaseSettings):
    model_config = _section("RAG_EMBED_")
    model_path: str | None = Field(
        default=None,
        description="Path to a sentence-transformers model. Unset: the bundled all-MiniLM-L6-v2.",
    )
    batch_size: int = Field(default=32, ge=1, le=1024, description="Chunks per embed task.")
    threads: int = Field(
        default=0,
        ge=0,
        description="Embedding threads per process (torch or ONNX Runtime); 0 = cores / local "
        "processes.",
    )
    backend: str = Field(
        default="onnx",
        description="'onnx' (ONNX Runtime, exported once from the model's weights to "
        "RAG_DATA_DIR/models; the embedder never loads torch) or 'torch' (sentence-transformers). Same "
        "vectors (cosine >= 0.999), same model id, so caches and stored vectors carry over; "
        "ONNX is faster on CPU (bench/embed_backends.py).",
    )

    onnx_cache_dir: Path | None = Field(
        default=None,
        description="Where the ONNX export of the model is kept (one file per model identity, "
        "written once, atomically). Unset: RAG_DATA_DIR/models.",
    )

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        if v not in {"onnx", "torch"}:
            raise ValueError("RAG_EMBED_BACKEND must be 'onnx' or 'torch'")
        return v


class ChunkingSettings(BaseSettings):
    model_config = _section("RAG_CHUNK_")
    max_tokens: int = Field(
        default=128,
        ge=16,
        le=254,
        description="Word pieces per chunk (the model reads at most 256 incl. 2 specials). "
        "A chunk's vector embeds its document's title, then the chunk text; the title is cut "
        "to the room left. With RAG_CHUNK_LEXICAL_CONTEXT_TOKENS of context around each chunk "
        "for BM25, 128 scored SciFact train hybrid nDCG@10 0.7464 (20,041 chunks) against "
        "0.7397 for 200 without context (11,888 chunks); 128 without context: 0.7410.",
    )
    overlap_tokens: int = Field(default=32, ge=0, description="Word pieces shared by neighbours.")
    lexical_context_tokens: int = Field(
        default=36,
        ge=0,
        le=1024,
        description="Word pieces of the page before and after a chunk that its BM25 vector "
        "reads too (whole words; the dense vector reads the chunk alone). 36 each side makes "
        "BM25 read ~200, the chunk size it scored best at on SciFact train; 0 reads the chunk "
        "alone. Dense wants short chunks, BM25 long ones (shared/chunking.py).",
    )

    @model_validator(mode="after")
    def _overlap_fits(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError("RAG_CHUNK_OVERLAP_TOKENS must be smaller than RAG_CHUNK_MAX_TOKENS")
        return self


# Retrieval and BM25 defaults are tuned on SciFact's train split (809 queries) by
# bench/tune_scifact.py; its results file has every variant tried.
class RetrievalSettings(BaseSettings):
    model_config = _section("RAG_RETRIEVAL_")
    rrf_k: int = Field(
        default=2,
        ge=1,
        description="Reciprocal rank fusion constant (fusion 'rrf'). Chunk lists favour a small "
        "one: k 1-5 scored nDCG@10 0.724-0.725 on SciFact train, k 60 0.715.",
    )
    candidates: int = Field(
        default=300,
        ge=1,
        description="Chunks each mode contributes to the fusion (at least top_k). 300: "
        "any top_k up to 300 then sees the same fused order, the one `rag eval` scores; "
        "1000 scored no better.",
    )
    fusion: str = Field(
        default="convex",
        description="'convex' (min-max normalised scores, weighted; each document's best "
        "chunk scored on the document's best of each list) or 'rrf'. On SciFact train "
        "convex scored nDCG@10 0.733, chunk-by-chunk convex 0.730, RRF 0.725 (chunk vectors "
        "of the text alone); with the title embedded too, convex 0.7382 (shipped, with "
        "short_query_terms: 0.7397, chunk by chunk 0.7340). A document's best chunk beat "
        "adding a share of its second best (+0.1: 0.7360, +0.25: 0.7334), the top-2 mean "
        "(0.7156) and the sum (0.6780) per list.",
    )
    dense_weight: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="Convex fusion weight of the dense list (BM25 gets the rest). Flat from "
        "0.4 to 0.6 on SciFact train (nDCG@10 0.732-0.734); 0.3 or 0.7 lose 0.005-0.011. "
        "With titles embedded: 0.3 0.7259, 0.4 0.7339, 0.5 0.7382, 0.6 0.7346, 0.7 0.7285.",
    )
    short_query_terms: int = Field(
        default=5,
        ge=0,
        description="Queries of at most this many distinct BM25 terms (after stop words) fuse "
        "with short_query_dense_weight; 0: none. Few terms leave BM25 little to match. On "
        "SciFact train (median 8 terms) 5 and 0.6 scored nDCG@10 0.7397 against 0.7382 with "
        "one weight; every fold of a 5-fold split of train chose them, the held-out folds "
        "gained 0.0016 on average (3 of 5 folds higher, 1 equal). bench/tune_scifact.py --ideas.",
    )
    short_query_dense_weight: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="Convex fusion weight of the dense list for short queries "
        "(short_query_terms).",
    )

    @field_validator("fusion")
    @classmethod
    def _known_fusion(cls, v: str) -> str:
        if v not in {"convex", "rrf"}:
            raise ValueError("RAG_RETRIEVAL_FUSION must be 'convex' or 'rrf'")
        return v


class Bm25Settings(BaseSettings):
    model_config = _section("RAG_BM25_")
    k1: float = Field(
        default=1.2,
        gt=0,
        description="BM25 term-frequency saturation. 0.9-2.0 within 0.005 nDCG@10 on SciFact.",
    )
    b: float = Field(
        default=0.75,
        ge=0,
        le=1,
        description="BM25 length normalisation. 0.3-1.0 within 0.005 nDCG@10 on SciFact.",
    )
    avg_len: float = Field(
        default=150,
        gt=0,
        description="Average chunk length in tokens, fixed at index time (the store keeps no "
        "length statistics). What BM25 reads of a SciFact chunk (title, chunk and its lexical "
        "context) averages 78 tokens after stop words (77 for the 200-token chunks this was "
        "tuned on), yet 150-300 scored 0.005 better than 75-100; long paper chunks run longer.",
    )
    stemmer: str | None = Field(
        default="english",
        description="Snowball stemmer, or none. Stemming is worth +0.035 nDCG@10 on SciFact; "
        "'porter' scores the same as 'english'.",
    )
    stopwords: bool = Field(
        default=True, description="Drop English stop words (+0.005 nDCG@10 on SciFact)."
    )


class CacheSettings(BaseSettings):
    model_config = _section("RAG_CACHE_")
    enabled: bool = Field(default=True, description="Serve /search and /ask from the cache.")
    redis_url: str | None = Field(
        default=None,
        description="Redis of the three cache tiers (run it with an LRU policy and no "
        "persistence). Unset: the broker, RAG_REDIS_URL.",
    )
    embedding_ttl_s: int = Field(default=30 * 86400, ge=1, description="Embedding tier TTL.")
    retrieval_ttl_s: int = Field(default=86400, ge=1, description="Retrieval tier TTL.")
    answer_ttl_s: int = Field(default=86400, ge=1, description="Answer tier TTL.")
    flight_timeout_s: float = Field(
        default=30, gt=0, description="How long identical requests wait for the first one."
    )


class LimitSettings(BaseSettings):
    model_config = _section("RAG_")
    max_file_mb: float = Field(default=50, gt=0, description="Largest file ingested, in MiB.")
    max_pages: int = Field(default=2000, ge=1, description="Most pages read from one PDF.")
    parse_timeout_s: float = Field(default=120, gt=0, description="Time limit to parse one file.")
    max_upload_files: int = Field(default=500, ge=1, description="Files in one upload request.")
    max_upload_mb: float = Field(
        default=500,
        gt=0,
        description="Largest upload request (all its files), in MiB; refused with 413 as soon "
        "as its Content-Length or the bytes received pass it.",
    )
    max_body_mb: float = Field(
        default=1, gt=0, description="Largest JSON request body, in MiB (413 beyond it)."
    )
    upload_retention_h: float = Field(
        default=24,
        gt=0,
        description="Hours a failed or cancelled upload's files stay on disk for a retry; "
        "after that only files that indexed documents are made of remain.",
    )
    max_concurrent_queries: int = Field(
        default=0,
        ge=0,
        description="Cold /search and /ask computations running at once in one API process; "
        "0 = twice the cores. Cache hits are not counted.",
    )
    query_queue_timeout_s: float = Field(
        default=10,
        gt=0,
        description="How long a cold query waits for a free slot before a 503 with Retry-After.",
    )

    @property
    def query_slots(self) -> int:
        return self.max_concurrent_queries or 2 * (os.cpu_count() or 1)


class JobSettings(BaseSettings):
    model_config = _section("RAG_JOB_")
    stall_s: float = Field(
        default=600,
        gt=0,
        description="A running job with no progress and no queued work for this long fails "
        "as stalled. Longer than the redelivery delay, so crashed work recovers first.",
    )
    retention_days: float = Field(default=7, gt=0, description="Finished jobs expire after this.")
    redelivery_s: int = Field(
        default=60,
        ge=5,
        description="Broker visibility timeout: an unacknowledged task of a dead worker "
        "comes back this long after the worker last renewed its lease (live workers renew "
        "the tasks they hold every quarter of it, so a long parse is never redelivered).",
    )

    @property
    def restore_interval_s(self) -> int:
        """How often the broker looks for tasks past the visibility timeout to put back."""
        return max(1, min(10, self.redelivery_s // 4))

    @property
    def lease_interval_s(self) -> float:
        """How often a live worker renews the tasks it holds."""
        return max(1.0, self.redelivery_s / 4)


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class AuthSettings(BaseSettings):
    """API keys, rate limits, CORS and trusted hosts: read by the API process (and `rag up`)."""

    model_config = _section("RAG_")
    auth: Literal["on", "off", "auto"] = Field(
        default="auto",
        description="API keys required: on, off, or auto (off only when the API listens on "
        "loopback).",
    )
    admin_key: SecretStr | None = Field(
        default=None,
        description="The bootstrap admin key (any long random secret); required when auth is on.",
    )
    rate_limit_per_s: float = Field(
        default=0, ge=0, description="Requests per second each key may make; 0 = no limit."
    )
    rate_limit_burst: int = Field(
        default=0,
        ge=0,
        description="Requests a key may make at once before the rate applies; 0 = the rate "
        "rounded up (at least 1).",
    )
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Browser origins allowed to call the API, comma-separated; none by default.",
    )
    trusted_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*"],
        description="Host headers the API answers, comma-separated (e.g. api.example.org); "
        "* = any.",
    )

    @field_validator("auth", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @field_validator("admin_key", mode="before")
    @classmethod
    def _long_enough(cls, v: Any) -> Any:
        text = v.get_secret_value() if isinstance(v, SecretStr) else v
        if text is None or text == "":
            return None
        if len(str(text)) < 16:
            raise ValueError("RAG_ADMIN_KEY must be at least 16 characters: use a long random "
                             "secret")
        return v

    @field_validator("cors_origins", "trusted_hosts", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        return _comma_list(v)

    @property
    def burst(self) -> int:
        """The bucket size the rate limiter uses."""
        return self.rate_limit_burst or max(1, math.ceil(self.rate_limit_per_s))


GENERATORS = ("extractive", "openai", "ollama")


class GenerationSettings(BaseSettings):
    model_config = _section("RAG_")

    generator: str = Field(
        default="extractive",
        description="'extractive' (no LLM: sentences of the retrieved chunks), 'openai' (any "
        "OpenAI-compatible /chat/completions server: llama.cpp, vLLM, OpenAI) or 'ollama' "
        "(Ollama's native /api/chat).",
    )
    llm_base_url: str | None = Field(
        default=None,
        description="OpenAI-compatible base URL, up to and including /v1 "
        "(e.g. http://127.0.0.1:8080/v1). Required when RAG_GENERATOR=openai.",
    )
    llm_model: str | None = Field(
        default=None,
        description="Model name sent to the LLM. Required for ollama; for openai, unset sends "
        "none, which a single-model server such as llama.cpp accepts.",
    )
    llm_api_key: str | None = Field(
        default=None, description="Bearer token for the openai generator, if the server needs one."
    )
    ollama_url: str = Field(
        default="http://127.0.0.1:11434", description="Ollama server URL (without /api)."
    )
    llm_connect_timeout_s: float = Field(
        default=3, gt=0, le=60, description="Time to open a connection to the LLM server."
    )
    llm_first_token_timeout_s: float = Field(
        default=20,
        gt=0,
        le=600,
        description="Time from sending the request to the first answer text (prompt "
        "processing included). Past it, the extractive answer is served instead.",
    )
    llm_total_timeout_s: float = Field(
        default=60,
        gt=0,
        le=3600,
        description="Time for the whole answer, retry included. Past it, the extractive "
        "answer is served instead.",
    )
    llm_max_tokens: int = Field(
        default=512, ge=1, le=32768, description="Most tokens the LLM may generate per answer."
    )
    llm_temperature: float = Field(
        default=0.0, ge=0, le=2, description="Sampling temperature; 0 answers deterministically."
    )
    llm_gguf: str | None = Field(
        default=None,
        description="A .gguf model (or 'smollm2', the packaged SmolLM2) that `rag up` serves "
        "with llama.cpp on loopback and points the openai generator at; as `rag up --llm`.",
    )
    llm_threads: int = Field(
        default=1, ge=1, le=256, description="CPU threads of the llama.cpp server `rag up` starts."
    )
    extractive_int8: bool = Field(
        default=True,
        description="Rank an extractive answer's candidate sentences against the question with "
        "the embedding model's int8 quantization (ONNX backend only): ~2x faster, cosine ~0.993 "
        "to the exact vectors, answers citing relevant papers as often on SciFact "
        "(bench/extractive_int8.py). Stored and query vectors are always exact.",
    )
    abstain_min_score: float = Field(
        default=0.28,
        ge=-1,
        le=1,
        description="Answer only when some chunk of the corpus has at least this cosine "
        "similarity to the question (all-MiniLM-L6-v2; the dense index's top 1); below it, "
        "say nothing relevant was found. "
        "Calibrated on SciFact by bench/calibrate_abstention.py; -1 never abstains.",
    )

    @field_validator("generator")
    @classmethod
    def _known_generator(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in GENERATORS:
            raise ValueError(f"RAG_GENERATOR must be one of {', '.join(GENERATORS)}, not {v!r}")
        return v

    @field_validator("llm_base_url", "ollama_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return None
        v = v.strip().rstrip("/")
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http:// or https:// URL")
        return v

    @field_validator("llm_model", "llm_api_key")
    @classmethod
    def _blank_is_unset(cls, v: str | None) -> str | None:
        return v.strip() or None if v is not None else None

    @model_validator(mode="after")
    def _generator_is_usable(self) -> GenerationSettings:
        if self.generator == "openai" and self.llm_base_url is None:
            raise ValueError(
                "RAG_GENERATOR=openai needs RAG_LLM_BASE_URL (e.g. http://127.0.0.1:8080/v1)"
            )
        if self.generator == "ollama" and self.llm_model is None:
            raise ValueError("RAG_GENERATOR=ollama needs RAG_LLM_MODEL (e.g. smollm2:135m)")
        if self.llm_first_token_timeout_s > self.llm_total_timeout_s:
            raise ValueError(
                "RAG_LLM_FIRST_TOKEN_TIMEOUT_S must not exceed RAG_LLM_TOTAL_TIMEOUT_S"
            )
        return self


class TelemetrySettings(BaseSettings):
    model_config = _section("RAG_")
    log_format: Literal["json", "text"] | None = Field(
        default=None,
        description="Log lines as 'json' (one object a line) or 'text' (for a terminal). "
        "Unset: text when stderr is a terminal, else json.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="When set, GET /metrics requires 'Authorization: Bearer <token>'.",
    )


class ChatSettings(BaseSettings):
    """Conversations of POST /chat, kept in Redis."""

    model_config = _section("RAG_CHAT_")
    ttl_s: int = Field(
        default=86400, ge=60, description="A chat session expires this long after its last turn."
    )
    max_messages: int = Field(
        default=100,
        ge=2,
        le=10000,
        description="Messages kept per session (user and assistant each count); older ones "
        "are dropped.",
    )


class ClientSettings(BaseSettings):
    """What the CLI needs to reach the API; built alone, so a client never reads the rest."""

    model_config = _section("RAG_")
    api_url: str = Field(default="http://127.0.0.1:8000", description="Where clients find the API.")
    api_key: SecretStr | None = Field(
        default=None, description="The API key clients send (when the API has auth on)."
    )


class Settings(BaseSettings):
    """The whole configuration. `Settings()` reads the environment."""

    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    data_dir: Path = Field(default=Path("./data"), description="Embedded store, uploads, Redis.")
    corpus_root: Path | None = Field(
        default=None,
        description="Ingest paths must resolve inside it. Unset: the working directory.",
    )
    host: str = Field(default="127.0.0.1", description="API bind address (`rag serve`, `rag up`).")
    port: int = Field(default=8000, ge=0, le=65535, description="API port (`rag serve`, `rag up`).")
    workers: int = Field(default=2, ge=0, description="Worker processes `rag up` starts.")
    ui_port: int = Field(default=8501, ge=0, le=65535, description="Web UI port (`rag up`, `rag ui`).")
    local_workers: int = Field(
        default=1,
        ge=1,
        description="Embedding processes sharing this machine's cores (set by `rag up`); "
        "with RAG_EMBED_THREADS 0 each takes cores / this many threads.",
    )
    worker_name: str | None = Field(
        default=None, description="This worker's name in logs and /health (`rag worker --name`)."
    )
    key_prefix: str = Field(default="rag", description="Prefix of every Redis key we write.")
    consume_index: bool = Field(
        default=True,
        description="Embedded mode: the API process (the store's owner) consumes the index "
        "queue. Only a second, read-only API process over its own store sets this false.",
    )

    client: ClientSettings = Field(default_factory=ClientSettings)
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    qdrant: QdrantSettings = Field(default_factory=QdrantSettings)
    embedding: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    chunking: ChunkingSettings = Field(default_factory=ChunkingSettings)
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    bm25: Bm25Settings = Field(default_factory=Bm25Settings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    security: AuthSettings = Field(default_factory=AuthSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    chat: ChatSettings = Field(default_factory=ChatSettings)

    @property
    def embedded_store(self) -> bool:
        """True when the store lives in the API process (no Qdrant server)."""
        return self.qdrant.url is None

    @property
    def root(self) -> Path:
        return (self.corpus_root or Path.cwd()).resolve()

    @property
    def uploads_dir(self) -> Path:
        return self.data_dir.resolve() / "uploads"

    @property
    def store_dir(self) -> Path:
        return self.data_dir.resolve() / "store"

    @property
    def redis_url(self) -> str:
        if self.redis.url is None:
            raise RuntimeError(
                "RAG_REDIS_URL is not set: start the service with `rag up`, "
                "or point RAG_REDIS_URL at a Redis server"
            )
        return self.redis.url

    @property
    def cache_redis_url(self) -> str:
        """The cache tiers' Redis: RAG_CACHE_REDIS_URL, else the broker."""
        return self.cache.redis_url or self.redis_url


def setting_names() -> set[str]:
    """Every `RAG_*` environment name some section reads."""
    names: set[str] = set()
    sections: list[type[BaseSettings]] = [Settings]
    while sections:
        section = sections.pop()
        prefix = str(section.model_config.get("env_prefix", ""))
        for name, field in section.model_fields.items():
            kind = field.annotation
            if isinstance(kind, type) and issubclass(kind, BaseSettings):
                sections.append(kind)
            else:
                names.add(f"{prefix}{name}".upper())
    return names


def unknown_settings(environ: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """(name, closest valid name) for each `RAG_*` variable no setting reads. `RAG_TEST_*` is
    the test suite's own."""
    environ = os.environ if environ is None else environ
    valid = setting_names()
    unknown = sorted(
        n for n in environ if n.startswith("RAG_") and n not in valid and not n.startswith("RAG_TEST_")
    )
    return [(n, next(iter(difflib.get_close_matches(n, valid, n=1, cutoff=0.6)), None)) for n in unknown]


def warn_unknown_settings(environ: Mapping[str, str] | None = None) -> list[str]:
    """Log one warning naming every unknown `RAG_*` variable; returns the messages."""
    messages = [
        f"{name} is not a rag-papers setting" + (f"; did you mean {close}?" if close else "")
        for name, close in unknown_settings(environ)
    ]
    if messages:
        log.warning("ignored environment: %s", "; ".join(messages))
    return messages
