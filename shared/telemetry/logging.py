"""Log lines of every rag-papers process: JSON objects (one a line) or text for a terminal.

Each line names the process role (api, worker, index, up) and, where they exist, the job and
the HTTP request being served. Those come from context variables: the API's middleware sets
the request id, the task bindings the job id, so a log call anywhere below picks them up.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("rag_request_id", default=None)
JOB_ID: ContextVar[str | None] = ContextVar("rag_job_id", default=None)
# A thread with another role than its process (the API's index consumer) sets this.
ROLE: ContextVar[str | None] = ContextVar("rag_role", default=None)

_process_role = "-"
# Chatty at INFO: one line per HTTP call of the Qdrant client, per connection, ...
_QUIET = ("httpx", "httpcore", "urllib3", "filelock", "sentence_transformers")


@contextmanager
def bind_job(job_id: str) -> Iterator[None]:
    """Lines logged inside carry `job_id`."""
    token = JOB_ID.set(job_id)
    try:
        yield
    finally:
        JOB_ID.reset(token)


def role() -> str:
    return ROLE.get() or _process_role


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "role": role(),
            "pid": record.process,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if (job_id := JOB_ID.get()) is not None:
            line["job_id"] = job_id
        if (request_id := REQUEST_ID.get()) is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(role)-6s %(name)s: %(message)s%(ids)s")

    def format(self, record: logging.LogRecord) -> str:
        record.role = role()
        ids = [f"{name}={value}" for name, value in
               (("job", JOB_ID.get()), ("req", REQUEST_ID.get())) if value is not None]
        record.ids = f"  [{' '.join(ids)}]" if ids else ""
        return super().format(record)


def _timestamp(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def resolve_format(log_format: str | None) -> str:
    """RAG_LOG_FORMAT, or when unset: text on a terminal, json otherwise."""
    if log_format is not None:
        return log_format
    return "text" if sys.stderr.isatty() else "json"


def configure_logging(process_role: str, log_format: str | None, *, level: int = logging.INFO) -> None:
    """One handler on the root logger, writing to stderr in `log_format` (see resolve_format).
    Call once at an entry point; calling again replaces the handler."""
    global _process_role
    _process_role = process_role
    fmt = resolve_format(log_format)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.set_name("rag")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "rag"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # warnings become log lines too
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)
    # Servers that bring their own handlers (uvicorn) log through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "celery"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
