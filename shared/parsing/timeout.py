"""`parse_file` in a forked child that is killed at a deadline, so no file can hang a worker.

A bare `os.fork` rather than `multiprocessing`: the child starts in about a millisecond with the
parent's imports already done, it works inside daemonic pool processes (which multiprocessing
refuses to let have children), and it leaves with `os._exit`, so no exit handler or buffered
output of the parent runs twice. The child only runs parsing code, never torch, whose thread
pools do not survive a fork. Its answer, a document or a ParseError, comes back pickled through
a pipe that the parent drains while it waits, so a large document cannot block the child.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from shared.documents import ParsedDocument

from . import parse as _parse
from .errors import ParseError, ParserCrashedError, ParseTimeoutError

__all__ = ["parse_file_with_timeout"]

_READ_SIZE = 1 << 20


def parse_file_with_timeout(
    path: Path | str,
    *,
    timeout_s: float,
    passwords: Sequence[str] = (),
    max_pages: int,
    max_bytes: int,
) -> ParsedDocument:
    """`parse_file` with a time limit; ParseTimeoutError when it is reached.

    A ParseError raised in the child is raised here with the same class and reason; any other
    exception there becomes a plain ParseError naming it, and a child that dies without an
    answer (a crash in a native library) gives ParserCrashedError.
    """
    kwargs: dict[str, Any] = {
        "passwords": tuple(passwords),
        "max_pages": max_pages,
        "max_bytes": max_bytes,
    }
    deadline = time.monotonic() + timeout_s
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(write_end, Path(path), kwargs)
    os.close(write_end)
    payload: bytes | None = None
    try:
        payload = _read_until_eof(read_end, deadline)
    finally:
        os.close(read_end)
        if payload is None:  # the deadline passed, or we were interrupted: stop the child
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if payload is None:
        raise ParseTimeoutError(timeout_s=timeout_s)
    if not payload:
        raise ParserCrashedError(exit_code=os.waitstatus_to_exitcode(status))
    outcome, value = pickle.loads(payload)
    if outcome == "error":
        raise value
    document: ParsedDocument = value
    return document


def _read_until_eof(fd: int, deadline: float) -> bytes | None:
    """Everything written to `fd` until the writer closes it; None at the deadline."""
    chunks: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            return None
        chunk = os.read(fd, _READ_SIZE)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _child(write_end: int, path: Path, kwargs: dict[str, Any]) -> NoReturn:
    code = 0
    try:
        try:
            answer: tuple[str, Any] = ("ok", _parse.parse_file(path, **kwargs))
        except ParseError as error:
            answer = ("error", error)
        except BaseException as error:  # noqa: BLE001 - report anything: the parent waits
            answer = ("error", ParseError(f"parser failed: {type(error).__name__}: {error}"))
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(data)
    except BaseException:  # noqa: BLE001 - an empty answer reads as a crash in the parent
        code = 1
    finally:
        os._exit(code)
