"""The UI's HTTP client: server-sent events, the API key, error details, and asking through
/ask when the server has no /chat. The server is httpx's MockTransport (no network)."""

from __future__ import annotations

import json

import httpx
import pytest

from services.ui.client import ApiClient, ApiError, RouteMissing
from services.ui.launch import DEFAULT_API_URL, ui_command, ui_config
from services.ui.sse import ServerEvent, parse_events


def test_events_are_read_as_the_eventsource_spec_says() -> None:
    lines = [
        ": ping",
        "event: retrieval",
        'data: {"sources": []}',
        "",
        "event: token",
        "data: first",
        "data: second",
        "id: 7",
        "",
        "data:no space",
        "",
        "event: final",
        'data: {"answer": "x"}',  # the last event, without its blank line
    ]
    assert list(parse_events(lines)) == [
        ServerEvent("retrieval", '{"sources": []}'),
        ServerEvent("token", "first\nsecond", "7"),
        ServerEvent("message", "no space", "7"),  # the last event id carries over
        ServerEvent("final", '{"answer": "x"}', "7"),
    ]


def _sse(*events: tuple[str, dict]) -> bytes:
    body = ": ping\n\n"
    for name, data in events:
        body += f"event: {name}\r\ndata: {json.dumps(data)}\r\n\r\n"
    return body.encode()


def test_the_api_key_is_sent_as_a_bearer_token_and_errors_keep_their_detail() -> None:
    seen: list[httpx.Request] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(
            409, json={"error": "conflict", "detail": "job j1 already ended: succeeded"}
        )

    api = ApiClient("http://api", api_key="s3cret", transport=httpx.MockTransport(server))
    with pytest.raises(ApiError) as caught:
        api.cancel("j1")
    assert seen[0].headers["authorization"] == "Bearer s3cret"
    assert (caught.value.status, caught.value.code) == (409, "conflict")
    assert caught.value.detail == "job j1 already ended: succeeded"

    anonymous = ApiClient("http://api", transport=httpx.MockTransport(server))
    with pytest.raises(ApiError):
        anonymous.cancel("j1")
    assert "authorization" not in seen[1].headers


def test_a_401_says_how_to_give_the_ui_a_key() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized", "detail": "missing API key"})

    with pytest.raises(ApiError, match="set RAG_API_KEY for the UI"):
        ApiClient("http://api", transport=httpx.MockTransport(server)).corpora()


def test_an_unreachable_api_is_an_error_naming_its_address() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    with pytest.raises(ApiError, match="API not reachable at http://api:9"):
        ApiClient("http://api:9", transport=httpx.MockTransport(server)).jobs()


def test_a_degraded_health_report_is_returned_not_raised() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"status": "degraded", "workers": {"live": []}})

    report = ApiClient("http://api", transport=httpx.MockTransport(server)).health()
    assert report["status"] == "degraded"


def test_a_chat_turn_streams_its_events() -> None:
    bodies: list[dict] = []

    def server(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        stream = _sse(
            ("token", {"text": "Hel"}), ("token", {"text": "lo"}), ("final", {"answer": "Hello"})
        )
        return httpx.Response(200, content=stream, headers={"content-type": "text/event-stream"})

    api = ApiClient("http://api", transport=httpx.MockTransport(server))
    events = list(
        api.stream_answer(message="q", corpus="c", session_id="s1", top_k=3, use_cache=False)
    )
    assert [e.event for e in events] == ["token", "token", "final"]
    assert bodies == [
        {
            "message": "q",
            "corpus": "c",
            "stream": True,
            "top_k": 3,
            "use_cache": False,
            "session_id": "s1",
        }
    ]


def test_a_server_without_chat_is_asked_through_ask_with_a_notice() -> None:
    paths: list[str] = []

    def server(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.path)
        if request.url.path == "/chat":
            return httpx.Response(404, json={"error": "not_found", "detail": "Not Found"})
        return httpx.Response(200, json={"answer": "A [1]", "citations": [], "cache_info": {}})

    api = ApiClient("http://api", transport=httpx.MockTransport(server))
    events = list(
        api.stream_answer(message="q", corpus="c", session_id=None, top_k=5, use_cache=True)
    )
    assert paths == ["/chat", "/ask"]
    assert [e.event for e in events] == ["notice", "final"]
    assert events[1].json()["answer"] == "A [1]"


def test_a_missing_session_is_not_mistaken_for_a_missing_route() -> None:
    def server(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            404, json={"error": "not_found", "detail": "chat session s9 not found"}
        )

    api = ApiClient("http://api", transport=httpx.MockTransport(server))
    with pytest.raises(ApiError) as caught:
        list(api.stream_answer(message="q", corpus="c", session_id="s9", top_k=5, use_cache=True))
    assert not isinstance(caught.value, RouteMissing)
    assert caught.value.detail == "chat session s9 not found"


def test_ui_command_runs_the_app_headless_on_the_port_against_the_api() -> None:
    argv = ui_command("http://127.0.0.1:8123", 8600)
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert argv[4].endswith("services/ui/app.py")
    assert argv[argv.index("--server.port") + 1] == "8600"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
    assert argv[-3:] == ["--", "--api-url", "http://127.0.0.1:8123"]
    assert ui_config(argv[argv.index("--") + 1 :], {}).api_url == "http://127.0.0.1:8123"


def test_ui_config_reads_the_environment_when_no_argument_is_given() -> None:
    config = ui_config([], {"RAG_API_URL": "http://api:1/", "RAG_API_KEY": "k"})
    assert (config.api_url, config.api_key) == ("http://api:1", "k")
    assert ui_config([], {}).api_url == DEFAULT_API_URL
    assert ui_config([], {"RAG_API_KEY": ""}).api_key is None


def test_the_ui_imports_nothing_from_the_api_or_the_worker() -> None:
    """It talks to the API over HTTP only, so it runs wherever the API is reachable."""
    import ast
    from pathlib import Path

    import services.ui

    imported = set()
    for path in Path(services.ui.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add((path.name, node.module))
            elif isinstance(node, ast.Import):
                imported.update((path.name, alias.name) for alias in node.names)
    offending = sorted(
        (name, module)
        for name, module in imported
        if module.split(".")[0] == "shared"
        or module.startswith(("services.api", "services.worker"))
    )
    assert offending == []
