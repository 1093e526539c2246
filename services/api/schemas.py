"""Request bodies of the API (responses are documented dicts built in shared/)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class IngestStart(BaseModel):
    path: str = Field(description="A folder or file inside RAG_CORPUS_ROOT.")
    corpus: str = "default"
    sync: bool = Field(default=False, description="Remove documents whose files are gone.")
    passwords: list[str] = Field(default_factory=list, description="Tried on encrypted PDFs.")


class JobAccepted(BaseModel):
    job_id: str
    rejected: list[dict[str, str]] = Field(default_factory=list)


class SearchRequest(BaseModel):
    query: str
    corpus: str = "default"
    top_k: int = Field(default=10, ge=1, le=1000)
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    use_cache: bool = True


class AskRequest(BaseModel):
    question: str
    corpus: str = "default"
    top_k: int = Field(default=5, ge=1, le=50)
    use_cache: bool = True
