"""API keys without a server: key format, auth on/off, roles and corpora, the guard's answers."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from shared.auth import (
    ANONYMOUS,
    ApiKey,
    AuthSetupError,
    ForbiddenError,
    Guard,
    KeyRing,
    Principal,
    Role,
    UnauthorizedError,
    check_auth_setup,
    decide_auth,
    is_loopback,
    tokens,
)
from shared.auth.errors import RateLimitedError
from shared.settings import AuthSettings, ClientSettings

ADMIN_KEY = "a-long-random-bootstrap-secret"


# ---- the key format -------------------------------------------------------------------------


def test_a_new_key_has_a_visible_id_and_a_32_byte_secret() -> None:
    key_id, token = tokens.new_token()
    assert token.startswith(f"rag_{key_id}_")
    secret = token.removeprefix(f"rag_{key_id}_")
    assert len(secret) == 43  # base64url of 32 bytes
    assert tokens.key_id_of(token) == key_id
    assert len({tokens.new_token()[1] for _ in range(100)}) == 100


def test_only_the_hash_identifies_a_key() -> None:
    _, token = tokens.new_token()
    stored = tokens.digest(token)
    assert len(stored) == 64 and token not in stored
    assert tokens.matches(token, stored)
    assert not tokens.matches(token[:-1] + ("A" if token[-1] != "A" else "B"), stored)


@pytest.mark.parametrize(
    "token", ["", "rag_", "rag_zzzzzzzzzzzz_secretsecretsecret", "bearer", "rag_abc_secret"]
)
def test_malformed_keys_have_no_id(token: str) -> None:
    assert tokens.key_id_of(token) is None


def test_listings_show_the_prefix_only() -> None:
    assert tokens.masked("0123456789ab") == "rag_0123456789ab_********"


# ---- on, off or auto ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.0.0.5", False),
        ("api.example.org", False),
        ("", False),
    ],
)
def test_loopback_hosts(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auto_is_off_only_on_loopback() -> None:
    auto = AuthSettings(auth="auto")
    assert decide_auth(auto, "127.0.0.1").enabled is False
    decision = decide_auth(auto, "0.0.0.0")
    assert decision.enabled is True
    assert (
        decision.describe() == "auth on: RAG_AUTH=auto and the API listens on 0.0.0.0, not loopback"
    )
    assert decide_auth(AuthSettings(auth="on"), "127.0.0.1").enabled is True
    off = decide_auth(AuthSettings(auth="off"), "0.0.0.0")
    assert off.enabled is False and "anyone who reaches it" in off.describe()


def test_auth_on_without_an_admin_key_says_how_to_set_one() -> None:
    with pytest.raises(AuthSetupError) as caught:
        check_auth_setup(AuthSettings(auth="auto"), "0.0.0.0")
    message = str(caught.value)
    assert "RAG_ADMIN_KEY is not set" in message
    assert "export RAG_ADMIN_KEY=" in message and "RAG_AUTH=off" in message
    assert check_auth_setup(AuthSettings(auth="auto"), "127.0.0.1").enabled is False
    with_key = AuthSettings(auth="on", admin_key=SecretStr(ADMIN_KEY))
    assert check_auth_setup(with_key, "0.0.0.0").enabled is True


def test_auth_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAG_AUTH", "ON")
    monkeypatch.setenv("RAG_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("RAG_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("RAG_TRUSTED_HOSTS", "api.example.org")
    monkeypatch.setenv("RAG_RATE_LIMIT_PER_S", "2.5")
    monkeypatch.setenv("RAG_API_KEY", "rag_0123456789ab_x")
    security = AuthSettings()
    assert security.auth == "on"
    assert security.cors_origins == ["https://a.example", "https://b.example"]
    assert security.trusted_hosts == ["api.example.org"]
    assert security.burst == 3  # 0 = the rate rounded up
    assert ADMIN_KEY not in repr(security)  # a secret never shows in a repr or a log line
    assert ClientSettings().api_key.get_secret_value() == "rag_0123456789ab_x"


def test_defaults_leave_cors_closed_and_every_host_trusted() -> None:
    security = AuthSettings()
    assert (security.auth, security.cors_origins, security.trusted_hosts) == ("auto", [], ["*"])
    assert security.rate_limit_per_s == 0


@pytest.mark.parametrize("name,value", [("RAG_AUTH", "maybe"), ("RAG_ADMIN_KEY", "short")])
def test_nonsense_auth_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match="RAG_ADMIN_KEY must be at least 16|auth"):
        AuthSettings()


# ---- roles and corpora ----------------------------------------------------------------------


def test_roles_cover_the_ones_below() -> None:
    assert Role.ADMIN.covers(Role.WRITER) and Role.WRITER.covers(Role.READER)
    assert not Role.READER.covers(Role.WRITER) and not Role.WRITER.covers(Role.ADMIN)


def test_job_visibility() -> None:
    reader = Principal(key_id="r1", name="r", role=Role.READER)
    writer = Principal(key_id="w1", name="w", role=Role.WRITER, corpora=frozenset({"a"}))
    admin = Principal(key_id="ad", name="ad", role=Role.ADMIN)
    assert reader.may_see_job(owner="r1", corpus="a")
    assert not reader.may_see_job(owner="w1", corpus="a")
    assert writer.may_see_job(owner="someone", corpus="a")  # its corpus's jobs
    assert not writer.may_see_job(owner="someone", corpus="b")
    assert admin.may_see_job(owner=None, corpus="z")
    with pytest.raises(ForbiddenError, match="corpus 'b'"):
        writer.require_job_control(job_id="j", corpus="b")
    with pytest.raises(ForbiddenError, match="needs a writer key"):
        reader.require_job_control(job_id="j", corpus="a")


# ---- the guard ------------------------------------------------------------------------------


class _Keys:
    """Stands in for the Redis key store: the ring only reads snapshots."""

    def __init__(self, *records: ApiKey) -> None:
        self.records = list(records)
        self.version = 1

    def remove(self, key_id: str) -> None:
        self.records = [r for r in self.records if r.id != key_id]
        self.version += 1

    def snapshot(self) -> tuple[int, list[ApiKey]]:
        return self.version, list(self.records)


def _issue(role: Role, corpora: tuple[str, ...] | None = None) -> tuple[ApiKey, str]:
    key_id, token = tokens.new_token()
    record = ApiKey(
        id=key_id,
        name=f"{role} key",
        role=role,
        corpora=corpora,
        created_at=0.0,
        digest=tokens.digest(token),
    )
    return record, token


@pytest.fixture
def issued() -> dict[str, tuple[ApiKey, str]]:
    return {
        "reader": _issue(Role.READER, ("papers",)),
        "writer": _issue(Role.WRITER),
        "admin": _issue(Role.ADMIN),
    }


@pytest.fixture
def guard(issued: dict[str, tuple[ApiKey, str]]) -> Guard:
    ring = KeyRing()
    ring.reload(_Keys(*(record for record, _ in issued.values())))  # type: ignore[arg-type]
    return Guard(enabled=True, ring=ring, admin_key=ADMIN_KEY)


def _bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_a_key_is_accepted_as_bearer_or_x_api_key(guard: Guard, issued: dict) -> None:
    record, token = issued["writer"]
    for headers in (_bearer(token), {"X-API-Key": token}, {"Authorization": f"bearer {token}"}):
        principal = guard.authenticate(headers, required_role=Role.WRITER)
        assert (principal.key_id, principal.role) == (record.id, Role.WRITER)


def test_the_bootstrap_admin_key_is_an_admin(guard: Guard) -> None:
    principal = guard.authenticate(_bearer(ADMIN_KEY), required_role=Role.ADMIN)
    assert (principal.key_id, principal.role) == ("admin", Role.ADMIN)


@pytest.mark.parametrize(
    "headers,detail",
    [
        ({}, "missing API key"),
        ({"authorization": "Basic dXNlcjpwYXNz"}, "missing API key"),
        (_bearer("rag_0123456789ab_" + "x" * 43), "unknown or revoked"),
        (_bearer("not-a-key"), "unknown or revoked"),
    ],
)
def test_missing_or_unknown_keys_are_401(guard: Guard, headers: dict, detail: str) -> None:
    with pytest.raises(UnauthorizedError, match=detail) as caught:
        guard.authenticate(headers, required_role=Role.READER)
    assert caught.value.status == 401
    assert caught.value.headers() == {"WWW-Authenticate": "Bearer"}


def test_a_key_that_looks_right_but_is_not_is_401(guard: Guard, issued: dict) -> None:
    record, _ = issued["admin"]
    forged = f"rag_{record.id}_" + "A" * 43  # right id, wrong secret
    with pytest.raises(UnauthorizedError):
        guard.authenticate(_bearer(forged), required_role=Role.READER)


def test_wrong_role_or_corpus_is_403(guard: Guard, issued: dict) -> None:
    _, reader = issued["reader"]
    _, writer = issued["writer"]
    with pytest.raises(ForbiddenError, match="is a reader key; this request needs a writer key"):
        guard.authenticate(_bearer(reader), required_role=Role.WRITER)
    with pytest.raises(ForbiddenError, match="may not use corpus 'other'.*its corpora: papers"):
        guard.authenticate(_bearer(reader), required_role=Role.READER, corpus="other")
    assert guard.authenticate(_bearer(reader), required_role=Role.READER, corpus="papers")
    with pytest.raises(ForbiddenError, match="is a writer key; this request needs an admin key"):
        guard.authenticate(_bearer(writer), required_role=Role.ADMIN)


def test_errors_never_repeat_the_key(guard: Guard, issued: dict) -> None:
    _, reader = issued["reader"]
    for headers, role, corpus in [
        (_bearer(reader), Role.ADMIN, None),
        (_bearer(reader), Role.READER, "other"),
        (_bearer(reader + "x"), Role.READER, None),
    ]:
        with pytest.raises((UnauthorizedError, ForbiddenError)) as caught:
            guard.authenticate(headers, required_role=role, corpus=corpus)
        assert reader not in caught.value.detail


def test_auth_off_lets_everyone_in_as_anonymous() -> None:
    guard = Guard(enabled=False, ring=KeyRing())
    assert guard.authenticate({}, required_role=Role.ADMIN, corpus="any") is ANONYMOUS
    assert guard.shows_detail({})


def test_auth_on_needs_an_admin_key() -> None:
    with pytest.raises(AuthSetupError, match="RAG_ADMIN_KEY"):
        Guard(enabled=True, ring=KeyRing())


def test_health_detail_is_for_admins_only(guard: Guard, issued: dict) -> None:
    assert not guard.shows_detail({})
    assert not guard.shows_detail(_bearer(issued["writer"][1]))
    assert guard.shows_detail(_bearer(issued["admin"][1]))
    assert guard.shows_detail({"x-api-key": ADMIN_KEY})


def test_an_older_snapshot_never_replaces_a_newer_one(issued: dict) -> None:
    old = _Keys(*(record for record, _ in issued.values()))
    new = _Keys(issued["admin"][0])
    new.version = 5
    ring = KeyRing()
    ring.reload(new)  # type: ignore[arg-type]
    ring.reload(old)  # type: ignore[arg-type] - a slow reader arriving late
    assert (ring.version, len(ring)) == (5, 1)
    ring.reload(old, force=True)  # type: ignore[arg-type] - Redis lost its data: believe it
    assert (ring.version, len(ring)) == (1, 3)


def test_a_revoked_key_stops_working_once_the_ring_reloads(issued: dict) -> None:
    store = _Keys(*(record for record, _ in issued.values()))
    ring = KeyRing()
    ring.reload(store)  # type: ignore[arg-type]
    guard = Guard(enabled=True, ring=ring, admin_key=ADMIN_KEY)
    _, token = issued["writer"]
    guard.authenticate(_bearer(token), required_role=Role.READER)
    store.remove(issued["writer"][0].id)
    ring.reload(store)  # type: ignore[arg-type]
    with pytest.raises(UnauthorizedError):
        guard.authenticate(_bearer(token), required_role=Role.READER)


def test_retry_after_is_whole_seconds_rounded_up() -> None:
    assert RateLimitedError("x", retry_after_s=0.2).headers() == {"Retry-After": "1"}
    assert RateLimitedError("x", retry_after_s=2.01).headers() == {"Retry-After": "3"}
