"""A small HTTP client of the rag-papers API, with errors that say what to do."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class ApiClient:
    def __init__(self, base_url: str, *, timeout: float = 60.0, api_key: str | None = None) -> None:
        """`api_key` (RAG_API_KEY) goes with every request as `Authorization: Bearer`."""
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=headers)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kwargs)
        except httpx.ConnectError:
            raise ApiError(
                0, "unreachable", f"no rag-papers API at {self.base_url} (start it with "
                "`rag up`, or set RAG_API_URL)"
            ) from None
        if resp.status_code >= 400:
            raise _error(resp)
        return resp.json()

    def download(self, method: str, path: str, dest: Path) -> Path:
        """Stream a response body into `dest`, which appears whole or not at all."""
        part = dest.with_name(dest.name + ".part")
        try:
            with self._http.stream(method, path, timeout=httpx.Timeout(60, read=None)) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise _error(resp)
                with part.open("wb") as out:
                    for block in resp.iter_bytes(1 << 20):
                        out.write(block)
        except BaseException as exc:
            part.unlink(missing_ok=True)
            if isinstance(exc, httpx.ConnectError):
                raise ApiError(0, "unreachable", f"no rag-papers API at {self.base_url}") from None
            raise
        part.replace(dest)
        return dest

    def start_ingest(self, path: str, *, corpus: str, sync: bool, passwords: list[str]) -> str:
        body = {"path": path, "corpus": corpus, "sync": sync, "passwords": passwords}
        return str(self._call("POST", "/ingest/start", json=body)["job_id"])

    def upload(self, files: list[Path], *, corpus: str, passwords: list[str]) -> dict[str, Any]:
        handles = [("files", (f.name, f.open("rb"))) for f in files]
        try:
            data: dict[str, Any] = {"corpus": corpus}
            if passwords:
                data["passwords"] = passwords
            return self._call("POST", "/ingest/upload", files=handles, data=data)  # type: ignore[no-any-return]
        finally:
            for _, (_, fh) in handles:
                fh.close()

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/ingest/status/{job_id}")  # type: ignore[no-any-return]

    def jobs(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        return self._call("GET", "/ingest/list", params=params)["jobs"]  # type: ignore[no-any-return]

    def cancel(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/ingest/cancel/{job_id}")  # type: ignore[no-any-return]

    def retry(self, job_id: str) -> dict[str, Any]:
        return self._call("POST", f"/ingest/retry/{job_id}")  # type: ignore[no-any-return]

    def search(self, query: str, **body: Any) -> dict[str, Any]:
        return self._call("POST", "/search", json={"query": query, **body})  # type: ignore[no-any-return]

    def ask(self, question: str, **body: Any) -> dict[str, Any]:
        return self._call("POST", "/ask", json={"question": question, **body})  # type: ignore[no-any-return]

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
        """(event, data) of a streamed answer (POST /ask or /chat with "stream": true).

        A server that answers in one piece (JSON) gives one `final` event. The read timeout
        is generous: the server sends a heartbeat every few seconds while the model thinks.
        """
        try:
            with self._http.stream(
                "POST", path, json={**body, "stream": True}, timeout=httpx.Timeout(60, read=120)
            ) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    try:
                        error = resp.json()
                    except ValueError:
                        raise ApiError(resp.status_code, "error", resp.text) from None
                    raise ApiError(
                        resp.status_code, error.get("error", "error"), error.get("detail", "")
                    )
                if "text/event-stream" not in resp.headers.get("content-type", ""):
                    resp.read()
                    yield "final", resp.json()
                    return
                for _, name, data in _parse_sse(resp.iter_lines()):
                    yield name, json.loads(data)
        except httpx.ConnectError:
            raise ApiError(
                0, "unreachable", f"no rag-papers API at {self.base_url} (start it with "
                "`rag up`, or set RAG_API_URL)"
            ) from None
        except httpx.TransportError as exc:
            raise ApiError(0, "unreachable", f"the answer stream broke off: {exc}") from None

    def chat_session(self, session_id: str) -> dict[str, Any]:
        return self._call("GET", f"/chat/{session_id}")  # type: ignore[no-any-return]

    def chat_export(self, session_id: str) -> str:
        resp = self._http.get(f"/chat/{session_id}/export")
        if resp.status_code >= 400:
            body = resp.json()
            raise ApiError(resp.status_code, body.get("error", "error"), body.get("detail", ""))
        return resp.text

    def corpora(self) -> list[dict[str, Any]]:
        return self._call("GET", "/corpora")["corpora"]  # type: ignore[no-any-return]

    def cache_stats(self) -> dict[str, Any]:
        return self._call("GET", "/cache/stats")  # type: ignore[no-any-return]

    def cache_purge(self, tier: str) -> dict[str, Any]:
        return self._call("DELETE", f"/cache/{tier}")  # type: ignore[no-any-return]

    def create_key(self, *, role: str, name: str, corpora: list[str] | None) -> dict[str, Any]:
        body: dict[str, Any] = {"role": role, "name": name}
        if corpora:
            body["corpora"] = corpora
        return self._call("POST", "/keys", json=body)  # type: ignore[no-any-return]

    def keys(self) -> list[dict[str, Any]]:
        return self._call("GET", "/keys")["keys"]  # type: ignore[no-any-return]

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._call("DELETE", f"/keys/{key_id}")  # type: ignore[no-any-return]

    def health(self) -> tuple[int, dict[str, Any]]:
        resp = self._http.get("/health")
        return resp.status_code, resp.json()

    def events(self, job_id: str, *, reconnect_for_s: float = 120) -> Iterator[tuple[str, dict[str, Any]]]:
        """The job's events, reconnecting (with Last-Event-ID) if the API goes away."""
        last_id = ""
        down_since: float | None = None
        while True:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            try:
                with self._http.stream(
                    "GET", f"/ingest/events/{job_id}", headers=headers, timeout=httpx.Timeout(60, read=60)
                ) as resp:
                    if resp.status_code >= 400:
                        resp.read()
                        body = resp.json()
                        raise ApiError(resp.status_code, body.get("error", ""), body.get("detail", ""))
                    down_since = None
                    for event_id, name, data in _parse_sse(resp.iter_lines()):
                        last_id = event_id or last_id
                        yield name, json.loads(data)
                        if name in ("succeeded", "failed", "cancelled"):
                            return
            except (httpx.TransportError, httpx.RemoteProtocolError):
                down_since = down_since or time.monotonic()
                if time.monotonic() - down_since > reconnect_for_s:
                    raise ApiError(0, "unreachable", f"lost the API at {self.base_url}") from None
                time.sleep(1.0)


def client_from_env(*, timeout: float = 60.0) -> ApiClient:
    """A client of RAG_API_URL that sends RAG_API_KEY."""
    from shared.settings import ClientSettings

    settings = ClientSettings()
    key = settings.api_key.get_secret_value() if settings.api_key else None
    return ApiClient(settings.api_url, timeout=timeout, api_key=key)


def _error(resp: httpx.Response) -> ApiError:
    try:
        body = resp.json()
        return ApiError(resp.status_code, body.get("error", "error"), body.get("detail", ""))
    except (ValueError, AttributeError):
        return ApiError(resp.status_code, "error", resp.text)


def _parse_sse(lines: Iterator[str]) -> Iterator[tuple[str, str, str]]:
    event_id, name, data = "", "message", []
    for line in lines:
        if line == "":
            if data:
                yield event_id, name, "\n".join(data)
            event_id, name, data = "", "message", []
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "event":
                name = value
            elif field == "data":
                data.append(value)
