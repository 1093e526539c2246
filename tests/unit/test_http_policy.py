"""CORS stays closed unless RAG_CORS_ORIGINS opens it; RAG_TRUSTED_HOSTS limits Host headers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.api.auth import install_http_policy
from shared.settings import AuthSettings

PREFLIGHT = {
    "Origin": "https://ui.example",
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization,content-type",
}


def _app(**settings: object) -> TestClient:
    app = FastAPI()

    @app.post("/search")
    def search() -> dict[str, str]:
        return {"ok": "yes"}

    install_http_policy(app, AuthSettings(**settings))  # type: ignore[arg-type]
    return TestClient(app)


def test_cors_is_off_by_default() -> None:
    client = _app()
    assert "access-control-allow-origin" not in client.options("/search", headers=PREFLIGHT).headers
    resp = client.post("/search", headers={"Origin": "https://ui.example"})
    assert resp.status_code == 200 and "access-control-allow-origin" not in resp.headers


def test_listed_origins_may_call_with_a_key() -> None:
    client = _app(cors_origins=["https://ui.example"])
    preflight = client.options("/search", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "https://ui.example"
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    other = client.options("/search", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers


def test_trusted_hosts_refuse_other_host_headers() -> None:
    client = _app(trusted_hosts=["api.example.org"])
    assert client.post("/search", headers={"Host": "api.example.org"}).status_code == 200
    refused = client.post("/search", headers={"Host": "attacker.example"})
    assert refused.status_code == 400
    assert _app().post("/search", headers={"Host": "anything.example"}).status_code == 200
