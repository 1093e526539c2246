"""What a running job waits for, when the wait is not plain progress: tasks of the job held by
a worker that stopped responding, and when the broker gives them back.

Read from the broker's own keys (kombu's `unacked` and `unacked_index`) and the lease hash
that live workers renew (shared/tasks/leases.py). A delivered task whose delivery time has not
been renewed for a lease interval and a half, and which no live worker lists, is orphaned: it
returns to its queue RAG_JOB_REDELIVERY_S after that time (plus the broker's sweep interval).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import redis

from shared.keys import Keys


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _lease_is_fresh(lease: dict[str, Any], now: float) -> bool:
    return now - float(lease["at"]) <= float(lease["interval"]) * 1.5 + 2


def _job_of(payload: Any) -> str | None:
    """The job id in an unacknowledged Celery message (kombu's [message, exchange, key])."""
    try:
        message = json.loads(payload)[0]
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        _, kwargs, _ = json.loads(body)
        return str(kwargs["msg"]["job_id"])
    except (ValueError, KeyError, TypeError, IndexError):
        return None


def waiting_for(
    client: redis.Redis,
    keys: Keys,
    job_id: str,
    *,
    redelivery_s: float,
    restore_interval_s: float,
    now: float | None = None,
) -> str | None:
    """A sentence for the job record, or None when nothing of the job is stuck."""
    now = time.time() if now is None else now
    live: set[str] = set()
    last_holder: dict[str, str] = {}
    expired: list[Any] = []
    leases: dict[Any, Any] = client.hgetall(keys.worker_leases())
    for holder, value in leases.items():
        try:
            lease = json.loads(value)
        except ValueError:
            continue
        tags = {str(tag) for tag in lease.get("tags", {})}
        if _lease_is_fresh(lease, now):
            live |= tags
        else:
            last_holder.update({tag: str(lease.get("name") or _text(holder)) for tag in tags})
            if now - float(lease["at"]) > 3 * redelivery_s + 60:
                expired.append(holder)
    if expired:
        client.hdel(keys.worker_leases(), *expired)
    grace = max(1.0, redelivery_s / 4) * 1.5 + 2
    delivered: list[Any] = client.zrange(
        keys.celery("unacked_index"), 0, -1, withscores=True
    )
    orphans = [
        (_text(tag), float(score))
        for tag, score in delivered
        if _text(tag) not in live and now - float(score) > grace
    ]
    if not orphans:
        return None
    payloads: list[Any] = client.hmget(
        keys.celery("unacked"), [tag for tag, _ in orphans]
    )
    mine = [
        (tag, score)
        for (tag, score), payload in zip(orphans, payloads, strict=True)
        if payload is not None and _job_of(payload) == job_id
    ]
    if not mine:
        return None
    names = sorted({last_holder[tag] for tag, _ in mine if tag in last_holder})
    back_in = max(0.0, max(score for _, score in mine) + redelivery_s - now) + restore_interval_s
    n = len(mine)
    who = f" ({', '.join(names)})" if names else ""
    return (
        f"{n} task{'s' if n > 1 else ''} held by a worker that stopped responding{who}; "
        f"{'they return' if n > 1 else 'it returns'} in ~{back_in:.0f} s"
    )
