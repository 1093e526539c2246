"""API keys in Redis (one hash per key, an index set, a version counter) and the in-memory
ring an API process authenticates against without a round trip.

Every change bumps the version; each API process reloads its ring at once after its own
changes and, for the changes of other replicas, when its watcher sees the version move.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from shared.auth import tokens
from shared.auth.principal import Principal, Role, scoped
from shared.errors import InvalidRequestError, NotFoundError
from shared.keys import Keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ApiKey:
    id: str
    name: str
    role: Role
    corpora: tuple[str, ...] | None
    created_at: float
    digest: str

    def principal(self) -> Principal:
        return Principal(
            key_id=self.id, name=self.name, role=self.role, corpora=scoped(self.corpora)
        )

    def public(self) -> dict[str, Any]:
        """What listings show: everything but the digest."""
        return {
            "id": self.id,
            "name": self.name,
            "role": str(self.role),
            "corpora": list(self.corpora) if self.corpora is not None else None,
            "created_at": self.created_at,
            "masked": tokens.masked(self.id),
        }

    @classmethod
    def from_hash(cls, data: dict[bytes, bytes]) -> ApiKey:
        text = {k.decode(): v.decode() for k, v in data.items()}
        corpora = json.loads(text["corpora"])
        return cls(
            id=text["id"],
            name=text["name"],
            role=Role(text["role"]),
            corpora=tuple(corpora) if corpora is not None else None,
            created_at=float(text["created_at"]),
            digest=text["digest"],
        )


class ApiKeyStore:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._r = client
        self._k = keys

    def create(
        self, *, role: Role, name: str, corpora: Iterable[str] | None = None
    ) -> tuple[ApiKey, str]:
        """A new key: its record and the key itself (returned once, stored only as a hash)."""
        if not name.strip():
            raise InvalidRequestError("name: give the key a name (who or what uses it)")
        corpus_list = sorted(set(corpora)) if corpora is not None else None
        if role is Role.ADMIN and corpus_list is not None:
            raise InvalidRequestError("corpora: admin keys reach every corpus; leave corpora out")
        if corpus_list == []:
            raise InvalidRequestError("corpora: name at least one corpus, or leave it out")
        key_id, token = tokens.new_token()
        record = ApiKey(
            id=key_id,
            name=name.strip(),
            role=role,
            corpora=tuple(corpus_list) if corpus_list is not None else None,
            created_at=time.time(),
            digest=tokens.digest(token),
        )
        pipe = self._r.pipeline()
        pipe.hset(
            self._k.api_key(key_id),
            mapping={
                "id": record.id,
                "name": record.name,
                "role": str(record.role),
                "corpora": json.dumps(corpus_list),
                "created_at": record.created_at,
                "digest": record.digest,
            },
        )
        pipe.sadd(self._k.api_keys(), key_id)
        pipe.incr(self._k.api_keys_version())
        pipe.execute()
        return record, token

    def get(self, key_id: str) -> ApiKey:
        data = self._r.hgetall(self._k.api_key(key_id))
        if not data:
            raise NotFoundError(f"API key {key_id!r} not found (revoked, or never issued)")
        return ApiKey.from_hash(data)

    def list(self) -> list[ApiKey]:
        return sorted(self.snapshot()[1], key=lambda k: k.created_at)

    def revoke(self, key_id: str) -> ApiKey:
        record = self.get(key_id)
        pipe = self._r.pipeline()
        pipe.delete(self._k.api_key(key_id))
        pipe.srem(self._k.api_keys(), key_id)
        pipe.incr(self._k.api_keys_version())
        deleted, *_ = pipe.execute()
        if not deleted:  # revoked by someone else meanwhile
            raise NotFoundError(f"API key {key_id!r} not found (revoked, or never issued)")
        return record

    def version(self) -> int:
        return int(self._r.get(self._k.api_keys_version()) or 0)

    def snapshot(self) -> tuple[int, list[ApiKey]]:
        """A version and every key. The version is read first, so the keys are at least that
        new: a change racing the read shows as a version behind, and is read again."""
        version = self.version()
        ids = [i.decode() for i in self._r.smembers(self._k.api_keys())]
        pipe = self._r.pipeline(transaction=False)
        for key_id in ids:
            pipe.hgetall(self._k.api_key(key_id))
        rows = pipe.execute() if ids else []
        return version, [ApiKey.from_hash(row) for row in rows if row]


class KeyRing:
    """The keys an API process accepts, held in memory: authenticating costs no round trip."""

    def __init__(self) -> None:
        self._by_id: dict[str, ApiKey] = {}
        self._lock = threading.Lock()
        self.version = -1

    def reload(self, store: ApiKeyStore, *, force: bool = False) -> None:
        """Read every key again. `force`: even if the version went back (Redis lost data)."""
        version, keys = store.snapshot()
        with self._lock:  # a slower, older read never replaces a newer one
            if force or version >= self.version:
                self._by_id = {k.id: k for k in keys}  # one assignment: readers see old or new
                self.version = version

    def find(self, token: str) -> ApiKey | None:
        key_id = tokens.key_id_of(token)
        record = self._by_id.get(key_id) if key_id else None
        if record is None or not tokens.matches(token, record.digest):
            return None
        return record

    def __len__(self) -> int:
        return len(self._by_id)


async def follow_key_changes(
    ring: KeyRing, store: ApiKeyStore, client: aioredis.Redis, keys: Keys, *, every_s: float = 1.0
) -> None:
    """Reload `ring` whenever another process changed the keys (runs until cancelled)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            version = int(await client.get(keys.api_keys_version()) or 0)
            if version != ring.version:
                await asyncio.to_thread(ring.reload, store, force=version < ring.version)
        except redis.RedisError:  # Redis away for a moment: keep the last ring, look again
            log.warning("could not check API keys for changes", exc_info=True)
