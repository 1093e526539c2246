"""The cache lookup's script calls survive what Redis does to them: a flushed script cache,
and connections killed between calls (a restart, a proxy timing idle connections out)."""

from __future__ import annotations

import asyncio
import uuid

import redis
import redis.asyncio as aioredis

from shared.direct_script import DirectScript

SCRIPT = "return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}"


def _run(redis_url: str, steps: int, between) -> list[list[bytes]]:
    name = f"direct-{uuid.uuid4().hex[:8]}"
    key = f"test:{name}"

    async def main() -> list[list[bytes]]:
        client = aioredis.Redis.from_url(f"{redis_url}?client_name={name}")
        script = DirectScript(client, SCRIPT)
        replies = []
        try:
            for i in range(steps):
                # two at once: two connections are kept
                replies += await asyncio.gather(script([key], [str(i)]), script([key], [str(i)]))
                between(name)
        finally:
            await script.aclose()
            await client.aclose()
        return replies

    return asyncio.run(main())


def test_calls_run_the_script(redis_url: str) -> None:
    replies = _run(redis_url, 2, lambda name: None)
    assert sorted(r[2] for r in replies) == [1, 2, 3, 4]
    assert {r[1] for r in replies} == {b"0", b"1"}


def test_a_flushed_script_cache_is_loaded_again(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    replies = _run(redis_url, 3, lambda name: sync.script_flush())
    assert sorted(r[2] for r in replies) == [1, 2, 3, 4, 5, 6]


def test_killed_connections_are_replaced(redis_url: str) -> None:
    sync = redis.Redis.from_url(redis_url)
    killed = []

    def kill(name: str) -> None:
        for client in sync.client_list():
            if client["name"] == name:
                killed.append(sync.client_kill_filter(_id=client["id"]))

    replies = _run(redis_url, 3, kill)
    assert sorted(r[2] for r in replies) == [1, 2, 3, 4, 5, 6]
    assert sum(killed) >= 4  # both kept connections, after each of the first two rounds
