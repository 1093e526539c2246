"""Task payloads and the names of the tasks that carry them."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel

SCAN = "rag.scan"
PARSE = "rag.parse"
EMBED = "rag.embed"
INDEX = "rag.index"
FINALIZE = "rag.finalize"

QUEUES = {SCAN: "ingest", PARSE: "ingest", EMBED: "embed", INDEX: "index", FINALIZE: "index"}


class ScanMsg(BaseModel):
    job_id: str


class ParseMsg(BaseModel):
    job_id: str
    file_no: int
    path: str
    source: str


class EmbedMsg(BaseModel):
    job_id: str
    file_no: int
    batch_no: int
    texts: list[str]


class IndexMsg(BaseModel):
    job_id: str
    file_no: int


class FinalizeMsg(BaseModel):
    job_id: str


class Dispatcher(Protocol):
    """Sends a stage's message to whichever process consumes its queue."""

    def send(self, task: str, msg: BaseModel) -> None: ...
