"""The REST API as the UI uses it: one method per call, errors as `ApiError` with the API's
own `detail`, the API key sent as a bearer token when one is configured.

    ApiError             any answer >= 400, or no answer at all (status 0)
    └── RouteMissing     the server has no such route (an older API)
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import httpx

from services.ui.sse import ServerEvent, parse_events

TIMEOUT = httpx.Timeout(60.0, connect=5.0)
# An answer streams for as long as the generator writes; a heartbeat comes every few seconds.
STREAM_TIMEOUT = httpx.Timeout(connect=5.0, read=300.0, write=60.0, pool=5.0)


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.detail} (HTTP {self.status}, {self.code})" if self.status else self.detail


class RouteMissing(ApiError):
    """404 from the router itself, not from a handler that looked something up."""


def _error(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
        code, detail = str(body.get("error", "http_error")), str(body.get("detail", resp.text))
    except (ValueError, AttributeError):
        code, detail = "http_error", resp.text[:500] or resp.reason_phrase
    if resp.status_code == 401:
        detail = f"{detail}: the API wants a key; set RAG_API_KEY for the UI"
    cls = (
        RouteMissing
        if resp.status_code in (404, 405) and detail in ("Not Found", "Method Not Allowed")
        else ApiError
    )
    return cls(resp.status_code, code, detail)


class ApiClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url, headers=headers, timeout=TIMEOUT, transport=transport
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiError(
                0, "unreachable", f"API not reachable at {self.base_url}: {exc}"
            ) from None
        if resp.status_code >= 400:
            raise _error(resp)
        return resp

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._call(method, path, **kwargs).json()

    # ---- service ---------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """The health report, also when it says degraded (503)."""
        try:
            return self._json("GET", "/health")  # type: ignore[no-any-return]
        except ApiError as exc:
            if exc.status == 503:
                return self._http.get("/health").json()  # type: ignore[no-any-return]
            raise

    def corpora(self) -> list[dict[str, Any]]:
        return self._json("GET", "/corpora")["corpora"]  # type: ignore[no-any-return]

    # ---- ingestion -------------------------------------------------------------------------

    def start_ingest(
        self, *, path: str, corpus: str, sync: bool, passwords: Sequence[str]
    ) -> dict[str, Any]:
        body = {"path": path, "corpus": corpus, "sync": sync, "passwords": list(passwords)}
        return self._json("POST", "/ingest/start", json=body)  # type: ignore[no-any-return]

    def upload(
        self, files: Sequence[tuple[str, bytes]], *, corpus: str, passwords: Sequence[str]
    ) -> dict[str, Any]:
        parts = [("files", (name, content, "application/octet-stream")) for name, content in files]
        data: dict[str, Any] = {"corpus": corpus}
        if passwords:
            data["passwords"] = list(passwords)
        return self._json("POST", "/ingest/upload", files=parts, data=data)  # type: ignore[no-any-return]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._json("GET", f"/ingest/status/{job_id}")  # type: ignore[no-any-return]

    def jobs(self, *, limit: int = 20) -> list[dict[str, Any]]:
        return self._json("GET", "/ingest/list", params={"limit": limit})["jobs"]  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/ingest/cancel/{job_id}")  # type: ignore[no-any-return]

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._json("POST", f"/ingest/retry/{job_id}")  # type: ignore[no-any-return]

    # ---- cache -----------------------------------------------------------------------------

    def cache_stats(self) -> dict[str, Any]:
        return self._json("GET", "/cache/stats")  # type: ignore[no-any-return]

    def purge(self, tier: str) -> dict[str, int]:
        return self._json("DELETE", f"/cache/{tier}")["purged"]  # type: ignore[no-any-return]

    # ---- search and answers ----------------------------------------------------------------

    def search(
        self, *, query: str, corpus: str, mode: str, top_k: int, use_cache: bool
    ) -> dict[str, Any]:
        body = {
            "query": query,
            "corpus": corpus,
            "mode": mode,
            "top_k": top_k,
            "use_cache": use_cache,
        }
        return self._json("POST", "/search", json=body)  # type: ignore[no-any-return]

    def stream_answer(
        self, *, message: str, corpus: str, session_id: str | None, top_k: int, use_cache: bool
    ) -> Iterator[ServerEvent]:
        """The events of one chat turn (POST /chat, streamed). A server without /chat is asked
        through POST /ask instead, announced by a `notice` event: no conversation context."""
        body: dict[str, Any] = {
            "message": message,
            "corpus": corpus,
            "stream": True,
            "top_k": top_k,
            "use_cache": use_cache,
        }
        if session_id:
            body["session_id"] = session_id
        try:
            yield from self._events("/chat", body)
            return
        except RouteMissing:
            pass
        notice = "This API has no /chat: each question is answered alone, without the conversation."
        yield ServerEvent("notice", json.dumps({"detail": notice}))
        ask = {
            "question": message,
            "corpus": corpus,
            "stream": True,
            "top_k": top_k,
            "use_cache": use_cache,
        }
        yield from self._events("/ask", ask)

    def _events(self, path: str, body: dict[str, Any]) -> Iterator[ServerEvent]:
        try:
            with self._http.stream("POST", path, json=body, timeout=STREAM_TIMEOUT) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error(resp)
                if "text/event-stream" in resp.headers.get("content-type", ""):
                    yield from parse_events(resp.iter_lines())
                else:  # a server that answers in one piece
                    yield ServerEvent("final", resp.read().decode())
        except httpx.HTTPError as exc:
            raise ApiError(0, "unreachable", f"the answer stream broke off: {exc}") from None

    def export(self, session_id: str) -> bytes:
        return self._call("GET", f"/chat/{session_id}/export").content

    def page_image(
        self,
        *,
        doc_id: str,
        page: int,
        corpus: str,
        chunk_id: str | None = None,
        text: str | None = None,
    ) -> bytes:
        params: dict[str, Any] = {"corpus": corpus}
        if chunk_id:
            params["chunk_id"] = chunk_id
        if text:
            params["text"] = text[:4000]
        return self._call("GET", f"/documents/{doc_id}/pages/{page}.png", params=params).content
