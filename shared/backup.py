"""Backups of an embedded deployment, taken while it runs, and their restore.

A backup is one tar.gz:
    manifest.json   format, versions, key prefix, each corpus's version and counts
    redis.jsonl     every broker key under the prefix (DUMP payload and TTL), one a line,
                    except what is disposable: cache tiers, flights, heartbeats, metrics
    store/edge/     the qdrant-edge shards
    uploads/        uploaded files (jobs and sources refer to them)
The keys and the store are copied while `Resources.store_writes` is held: every task that
writes the store and the catalog holds it too (in embedded mode the API process is their only
writer), so the two agree, and every corpus comes back at the version it had.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import tarfile
import time
from collections.abc import Iterable, Iterator
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import redis

from shared.errors import ConflictError, InvalidRequestError
from shared.keys import Keys
from shared.resources import Resources
from shared.settings import Settings

FORMAT = "rag-papers-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
KEYS_FILE = "redis.jsonl"
_BATCH = 500


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"


def _disposable(keys: Keys) -> tuple[str, ...]:
    """Key prefixes a backup leaves out: rebuilt or rewritten by the running service."""
    return tuple(
        f"{keys.prefix}:{kind}:" for kind in ("cache", "cachestats", "flight", "worker", "metrics")
    )


def _owned_keys(client: redis.Redis, keys: Keys) -> Iterator[bytes]:
    skip = tuple(p.encode() for p in _disposable(keys))
    for key in client.scan_iter(match=f"{keys.prefix}:*", count=1000):
        if not key.startswith(skip):
            yield key


def _batches(items: Iterable[bytes], size: int = _BATCH) -> Iterator[list[bytes]]:
    batch: list[bytes] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def dump_keys(client: redis.Redis, keys: Keys, out: IO[bytes]) -> int:
    """Write every kept key under the prefix as a JSON line; returns how many."""
    written = 0
    for batch in _batches(_owned_keys(client, keys)):
        pipe = client.pipeline(transaction=False)
        for key in batch:
            pipe.dump(key)
            pipe.pttl(key)
        replies = pipe.execute()
        for key, value, ttl in zip(batch, replies[::2], replies[1::2], strict=True):
            if value is None or ttl == -2:
                continue  # gone since the scan
            line = {
                "key": base64.b64encode(key).decode(),
                "ttl_ms": max(0, int(ttl)),
                "value": base64.b64encode(value).decode(),
            }
            out.write(json.dumps(line).encode() + b"\n")
            written += 1
    return written


def load_keys(
    client: redis.Redis, lines: Iterable[bytes], *, source_prefix: str, keys: Keys
) -> int:
    """RESTORE each dumped key, moved from `source_prefix` to this deployment's prefix."""
    old, new = f"{source_prefix}:".encode(), f"{keys.prefix}:".encode()
    loaded = 0
    pipe = client.pipeline(transaction=False)
    for raw in lines:
        if not raw.strip():
            continue
        line = json.loads(raw)
        key = base64.b64decode(line["key"])
        if key.startswith(old):
            key = new + key[len(old):]
        pipe.restore(key, int(line["ttl_ms"]), base64.b64decode(line["value"]), replace=True)
        loaded += 1
        if len(pipe) >= _BATCH:
            pipe.execute()
    pipe.execute()
    return loaded


# ---- taking a backup (the API process that owns the store) ---------------------------------


def create_backup(res: Resources, workdir: Path) -> Path:
    """Write `workdir/rag-backup-<time>.tar.gz` of the running deployment; returns its path."""
    from shared.vectors.store.edge import EdgeStore

    settings = res.settings
    store = res.store
    if not isinstance(store, EdgeStore):
        raise ConflictError(
            "backup copies the embedded qdrant-edge store; this deployment uses "
            f"{type(store).__name__} (with a Qdrant server, use its snapshots)"
        )
    folder = workdir / "content"
    folder.mkdir(parents=True)
    with res.store_writes:
        corpora = {}
        for name in res.catalog.corpora():
            summary = res.catalog.summary(name)
            summary.pop("name")
            corpora[name] = {**summary, "points": store.count(name)}
        with (folder / KEYS_FILE).open("wb") as out:
            n_keys = dump_keys(res.redis, res.keys, out)
        store.snapshot(folder / "store" / "edge")
    uploads = 0
    if settings.uploads_dir.is_dir():
        shutil.copytree(settings.uploads_dir, folder / "uploads")
        uploads = sum(1 for p in (folder / "uploads").rglob("*") if p.is_file())
    info = res.redis.info("server")
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "versions": {
            "rag_papers": _version("rag-papers"),
            "qdrant_edge": _version("qdrant-edge-py"),
            "redis_server": info.get("valkey_version") or info.get("redis_version"),
        },
        "key_prefix": settings.key_prefix,
        "redis_keys": n_keys,
        "store": {"engine": "qdrant-edge"},
        "chunking_signature": res.chunking_signature,
        "corpora": corpora,
        "uploads": uploads,
        "uploads_dir": str(settings.uploads_dir),
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    archive = workdir / time.strftime("rag-backup-%Y%m%d-%H%M%S.tar.gz", time.gmtime())
    with tarfile.open(archive, "w:gz", compresslevel=6) as tar:
        tar.add(folder / MANIFEST, arcname=MANIFEST)
        for entry in sorted(folder.iterdir()):
            if entry.name != MANIFEST:
                tar.add(entry, arcname=entry.name)
    shutil.rmtree(folder)
    return archive


# ---- restoring (offline, into a fresh data dir) ----------------------------------------------


def read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile(MANIFEST)
            manifest = json.loads(member.read()) if member else None
    except (OSError, tarfile.TarError, KeyError, ValueError) as exc:
        raise InvalidRequestError(f"{archive}: not a rag-papers backup ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InvalidRequestError(f"{archive}: not a rag-papers backup (no {FORMAT} manifest)")
    if manifest.get("format_version", 0) > FORMAT_VERSION:
        raise InvalidRequestError(
            f"{archive}: backup format {manifest['format_version']} is newer than this "
            f"rag-papers reads ({FORMAT_VERSION}); restore it with a newer version"
        )
    return manifest


def _has_keys(client: redis.Redis, keys: Keys) -> bool:
    return next(_owned_keys(client, keys), None) is not None


def restore_backup(
    archive: Path, *, settings: Settings, client: redis.Redis, force: bool = False
) -> dict[str, Any]:
    """Unpack `archive` into settings.data_dir and its keys into `client` under
    settings.key_prefix. Refuses a data dir or Redis that holds data already, unless `force`
    (which first deletes what is there). Returns the manifest."""
    manifest = read_manifest(archive)
    keys = Keys(settings.key_prefix)
    store_dir, uploads_dir = settings.store_dir, settings.uploads_dir
    occupied = [d for d in (store_dir, uploads_dir) if d.is_dir() and any(d.iterdir())]
    if occupied and not force:
        raise ConflictError(
            f"{', '.join(map(str, occupied))} not empty: restore into a fresh RAG_DATA_DIR, "
            "or pass --force to replace what is there"
        )
    if _has_keys(client, keys) and not force:
        raise ConflictError(
            f"Redis already holds keys under the prefix {keys.prefix!r}: restore into an empty "
            "one (or another RAG_KEY_PREFIX), or pass --force to replace them"
        )
    if force:
        for directory in occupied:
            shutil.rmtree(directory)
        for batch in _batches(client.scan_iter(match=f"{keys.prefix}:*", count=1000)):
            client.unlink(*batch)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    data_dir = settings.data_dir.resolve()
    with tarfile.open(archive, "r:gz") as tar:
        members = [m for m in tar.getmembers() if m.name.split("/")[0] in ("store", "uploads")]
        tar.extractall(data_dir, members=members, filter="data")
        lines = tar.extractfile(KEYS_FILE)
        if lines is None:
            raise InvalidRequestError(f"{archive}: {KEYS_FILE} missing")
        loaded = load_keys(client, lines, source_prefix=manifest["key_prefix"], keys=keys)
    _move_upload_jobs(client, keys, old=manifest.get("uploads_dir", ""), new=str(uploads_dir))
    return {**manifest, "restored_keys": loaded}


def _move_upload_jobs(client: redis.Redis, keys: Keys, *, old: str, new: str) -> None:
    """Jobs of uploads name their folder: point them at the restored one (so retry works)."""
    if not old or old == new:
        return
    job_key = re.compile(rf"^{re.escape(keys.prefix)}:job:[0-9a-f]+$")
    for key in client.scan_iter(match=f"{keys.prefix}:job:*", count=1000):
        if not job_key.match(key.decode(errors="replace")):
            continue
        fields = client.hmget(key, "abs_path", "root")
        moved = {
            name: new + value.decode()[len(old):]
            for name, value in zip(("abs_path", "root"), fields, strict=True)
            if value is not None and value.decode().startswith(old)
        }
        if moved:
            client.hset(key, mapping=moved)
