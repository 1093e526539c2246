"""Settings of answer generation: which generator, where the LLM is, and its time limits.

Flat `RAG_*` names like the other sections; the lead folds this class into `shared.settings`.
"""

from __future__ import annotations

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.generation.abstention import ABSTAIN_MIN_SCORE

GENERATORS = ("extractive", "openai", "ollama")


class GenerationSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore", populate_by_name=True)

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
    abstain_min_score: float = Field(
        default=ABSTAIN_MIN_SCORE,
        ge=-1,
        le=1,
        description="Answer only when some retrieved chunk has at least this cosine similarity "
        "to the question (all-MiniLM-L6-v2); below it, say nothing relevant was found. "
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
