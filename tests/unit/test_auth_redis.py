"""The key store and the token bucket against a real Valkey (never a fake)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
import redis
import redis.asyncio as aioredis

from shared.auth import ApiKeyStore, KeyRing, RateLimiter, Role, tokens
from shared.auth.store import follow_key_changes
from shared.errors import InvalidRequestError, NotFoundError
from shared.keys import Keys


@pytest.fixture
def keys() -> Keys:
    return Keys(f"t{uuid.uuid4().hex[:8]}")  # a fresh prefix per test


@pytest.fixture
def client(redis_url: str) -> redis.Redis:
    r = redis.Redis.from_url(redis_url)
    yield r
    r.close()


@pytest.fixture
def store(client: redis.Redis, keys: Keys) -> ApiKeyStore:
    return ApiKeyStore(client, keys)


def _everything_stored(client: redis.Redis, keys: Keys) -> bytes:
    blob = b""
    for name in client.scan_iter(f"{keys.prefix}:*"):
        kind = client.type(name)
        if kind == b"hash":
            blob += b"".join(k + v for k, v in client.hgetall(name).items())
        elif kind == b"set":
            blob += b"".join(client.smembers(name))
        elif kind == b"string":
            blob += client.get(name) or b""
    return blob


def test_a_key_is_stored_only_as_a_hash(
    store: ApiKeyStore, client: redis.Redis, keys: Keys
) -> None:
    record, token = store.create(role=Role.WRITER, name="ingest bot", corpora=["b", "a", "a"])
    assert token.startswith(f"rag_{record.id}_")
    assert record.corpora == ("a", "b")
    stored = _everything_stored(client, keys)
    secret = token.split("_", 2)[2]
    assert secret.encode() not in stored and token.encode() not in stored
    assert record.digest.encode() in stored


def test_create_list_revoke(store: ApiKeyStore) -> None:
    reader, _ = store.create(role=Role.READER, name="alice", corpora=["papers"])
    admin, _ = store.create(role=Role.ADMIN, name="ops")
    listed = [k.public() for k in store.list()]
    assert [k["name"] for k in listed] == ["alice", "ops"]
    assert listed[0] == {
        "id": reader.id,
        "name": "alice",
        "role": "reader",
        "corpora": ["papers"],
        "created_at": reader.created_at,
        "masked": f"rag_{reader.id}_********",
    }
    assert "digest" not in listed[0]
    assert store.revoke(reader.id).name == "alice"
    assert [k.id for k in store.list()] == [admin.id]
    with pytest.raises(NotFoundError, match="revoked, or never issued"):
        store.revoke(reader.id)


@pytest.mark.parametrize(
    "role,name,corpora,detail",
    [
        (Role.READER, " ", None, "name"),
        (Role.ADMIN, "x", ["papers"], "admin keys reach every corpus"),
        (Role.READER, "x", [], "at least one corpus"),
    ],
)
def test_nonsense_keys_are_refused(
    store: ApiKeyStore, role: Role, name: str, corpora: list[str] | None, detail: str
) -> None:
    with pytest.raises(InvalidRequestError, match=detail):
        store.create(role=role, name=name, corpora=corpora)
    assert store.list() == []


def test_the_ring_finds_keys_by_their_secret(store: ApiKeyStore) -> None:
    record, token = store.create(role=Role.READER, name="r")
    ring = KeyRing()
    ring.reload(store)
    assert ring.find(token) == record
    assert ring.find(token[:-2]) is None
    assert ring.version == store.version() == 1


def test_another_process_revoking_reaches_the_ring_within_a_second(
    redis_url: str, store: ApiKeyStore, keys: Keys
) -> None:
    _, token = store.create(role=Role.READER, name="r")
    ring = KeyRing()
    ring.reload(store)

    async def scenario() -> float:
        aclient = aioredis.Redis.from_url(redis_url)
        watcher = asyncio.create_task(follow_key_changes(ring, store, aclient, keys, every_s=0.1))
        try:
            other = ApiKeyStore(redis.Redis.from_url(redis_url), keys)  # "another replica"
            other.revoke(tokens.key_id_of(token) or "")
            start = time.monotonic()
            while ring.find(token) is not None:
                assert time.monotonic() - start < 5, "the ring never saw the revocation"
                await asyncio.sleep(0.02)
            return time.monotonic() - start
        finally:
            watcher.cancel()
            await aclient.aclose()

    assert asyncio.run(scenario()) < 1.0


# ---- the token bucket -----------------------------------------------------------------------


def _evalsha_calls(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return int(stats.get("cmdstat_evalsha", {}).get("calls", 0))


def test_the_bucket_allows_a_burst_then_says_when_to_come_back(
    redis_url: str, client: redis.Redis, keys: Keys
) -> None:
    async def scenario() -> tuple[list[float], float, list[float]]:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            limiter = RateLimiter(aclient, keys, per_s=2, burst=3)
            waits = [await limiter.take("k1") for _ in range(4)]
            others = [await limiter.take("k2") for _ in range(3)]  # a bucket per key
            start = time.monotonic()
            while await limiter.take("k1") > 0:  # poll until a token has come back
                assert time.monotonic() - start < 5
                await asyncio.sleep(0.05)
            return waits, time.monotonic() - start, others
        finally:
            await aclient.aclose()

    waits, refill_s, others = asyncio.run(scenario())
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.3 < waits[3] <= 0.5  # 1 token at 2/s: half a second at most
    assert others == [0.0, 0.0, 0.0]
    assert 0.2 < refill_s < 1.5


def test_a_take_is_one_round_trip(redis_url: str, client: redis.Redis, keys: Keys) -> None:
    async def takes(n: int) -> None:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            limiter = RateLimiter(aclient, keys, per_s=1000, burst=1000)
            await limiter.take("warm")  # loads the script once
            before = _evalsha_calls(client)
            for _ in range(n):
                await limiter.take("k")
            assert _evalsha_calls(client) - before == n
        finally:
            await aclient.aclose()

    asyncio.run(takes(20))


def test_idle_buckets_expire(redis_url: str, client: redis.Redis, keys: Keys) -> None:
    async def take() -> None:
        aclient = aioredis.Redis.from_url(redis_url)
        try:
            await RateLimiter(aclient, keys, per_s=10, burst=5).take("k")
        finally:
            await aclient.aclose()

    asyncio.run(take())
    ttl_ms = client.pttl(keys.rate_bucket("k"))
    assert 0 < ttl_ms <= 1500  # a full bucket's refill time plus a second
