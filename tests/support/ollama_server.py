"""A protocol-level test server for Ollama's POST /api/chat (not a model: scripted replies).

It speaks the wire format the `ollama` generator reads: HTTP/1.1 chunked transfer, one JSON
object per line, `{"message": {"role": "assistant", "content": ...}, "done": false}` per token
and a final `{"done": true, ...}` line, or an HTTP error status with `{"error": "..."}`. Each
`Reply` scripts the faults a real server shows: a line split across two writes (and a UTF-8
character split with it), an `{"error": ...}` line in the middle of a 200, a connection that
drops mid-answer, a stream that ends without its done line, a stall before a token.

Runs in a thread on a free loopback port: `with OllamaTestServer() as server: server.url`.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

HOLD_LIMIT_S = 30.0  # a held reply gives up after this, so a forgotten release never hangs


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gives up mid-answer (a timeout test) breaks the pipe: expected here.
        pass


@dataclass
class Reply:
    tokens: Sequence[str] = ("Hello", " world.")
    status: int = 200
    error: str | None = None  # the {"error": ...} body of a status >= 400
    retry_after: str | None = None
    error_after: int | None = None  # send an {"error": ...} line after this many tokens
    drop_after: int | None = None  # close the connection after this many tokens
    no_done: bool = False  # end the stream cleanly but without the done line
    split_lines: bool = False  # write every line in two pieces
    raw_lines: Sequence[bytes] = ()  # sent as they are, before the tokens
    hold_before: int | None = None  # wait for `release` before sending this token
    release: threading.Event = field(default_factory=threading.Event)


class OllamaTestServer:
    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.requests: list[dict[str, Any]] = []
        self._replies: queue.SimpleQueue[Reply] = queue.SimpleQueue()
        self._held: list[Reply] = []
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *replies: Reply) -> None:
        """Replies for the next requests, in order; then `default` again."""
        for reply in replies:
            self._replies.put(reply)
            self._held.append(reply)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        for reply in [self.default, *self._held]:
            reply.release.set()
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _next_reply(self) -> Reply:
        try:
            return self._replies.get_nowait()
        except queue.Empty:
            return self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(body)
                if self.path != "/api/chat":
                    self._error(404, "404 page not found")
                    return
                reply = server._next_reply()
                if reply.status >= 400:
                    self._error(reply.status, reply.error or "error", reply.retry_after)
                    return
                self._stream(reply, model=str(body.get("model", "")))

            def _error(self, status: int, message: str, retry_after: str | None = None) -> None:
                data = json.dumps({"error": message}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                if retry_after is not None:
                    self.send_header("Retry-After", retry_after)
                self.end_headers()
                self.wfile.write(data)

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _line(self, record: dict[str, Any], *, split: bool) -> None:
                data = json.dumps(record, ensure_ascii=False).encode() + b"\n"
                if split:
                    cut = len(data) // 2
                    self._chunk(data[:cut])
                    self._chunk(data[cut:])
                else:
                    self._chunk(data)

            def _stream(self, reply: Reply, *, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/x-ndjson")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for raw in reply.raw_lines:
                    self._chunk(raw)
                for i, token in enumerate(reply.tokens):
                    if reply.hold_before == i:
                        reply.release.wait(HOLD_LIMIT_S)
                    if reply.error_after == i:
                        self._line({"error": "model runner has unexpectedly stopped"}, split=False)
                        self._chunk(b"")
                        return
                    if reply.drop_after == i:
                        self.close_connection = True
                        self.wfile.flush()
                        self.connection.shutdown(2)
                        return
                    message = {"role": "assistant", "content": token}
                    record = {"model": model, "message": message, "done": False}
                    self._line(record, split=reply.split_lines)
                if not reply.no_done:
                    done = {"role": "assistant", "content": ""}
                    self._line(
                        {"model": model, "message": done, "done": True, "done_reason": "stop"},
                        split=reply.split_lines,
                    )
                self._chunk(b"")  # the terminating zero-length chunk

        return Handler
