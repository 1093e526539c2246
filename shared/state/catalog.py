"""The corpus catalog in Redis: which documents a corpus holds, under which source names.

A document is identified by its content hash; a source (a relative path, an upload name, a
JSONL record) points at one document. The catalog's version changes exactly when a commit
changes what the corpus holds, so caches keyed by it are never stale.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import redis

from shared.keys import Keys


@dataclass(slots=True)
class DocumentEntry:
    doc_id: str
    title: str
    chunks: int
    chunking: str
    format: str
    sources: list[str] = field(default_factory=list)
    external_id: str | None = None

    @classmethod
    def from_json(cls, raw: bytes | str) -> DocumentEntry:
        return cls(**json.loads(raw))

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass(frozen=True, slots=True)
class CommitResult:
    changed: bool
    version: int
    orphaned: list[str]  # documents no source points at any more: delete their points


class Catalog:
    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self._r = client
        self._k = keys

    def corpora(self) -> list[str]:
        return sorted(c.decode() for c in self._r.smembers(self._k.corpora()))

    def version(self, corpus: str) -> int:
        return int(self._r.get(self._k.corpus_version(corpus)) or 0)

    def source_doc(self, corpus: str, source: str) -> str | None:
        value = self._r.hget(self._k.corpus_sources(corpus), source)
        return value.decode() if value else None

    def source_docs(self, corpus: str, sources: list[str]) -> list[str | None]:
        """The document each source name holds now (None for a new name), in order."""
        if not sources:
            return []
        values = self._r.hmget(self._k.corpus_sources(corpus), sources)
        return [v.decode() if v else None for v in values]

    def document(self, corpus: str, doc_id: str) -> DocumentEntry | None:
        raw = self._r.hget(self._k.corpus_docs(corpus), doc_id)
        return DocumentEntry.from_json(raw) if raw else None

    def documents(self, corpus: str, doc_ids: Iterable[str]) -> dict[str, DocumentEntry]:
        ids = list(doc_ids)
        if not ids:
            return {}
        values = self._r.hmget(self._k.corpus_docs(corpus), ids)
        return {i: DocumentEntry.from_json(v) for i, v in zip(ids, values, strict=True) if v}

    def sources(self, corpus: str) -> dict[str, str]:
        return {
            k.decode(): v.decode()
            for k, v in self._r.hscan_iter(self._k.corpus_sources(corpus), count=1000)
        }

    def summary(self, corpus: str) -> dict[str, Any]:
        chunks = 0
        documents = 0
        for _, raw in self._r.hscan_iter(self._k.corpus_docs(corpus), count=1000):
            documents += 1
            chunks += int(json.loads(raw)["chunks"])
        return {
            "name": corpus,
            "documents": documents,
            "chunks": chunks,
            "version": self.version(corpus),
        }

    def lock(self, corpus: str, *, timeout_s: float = 300) -> Any:
        """Serialises commits to one corpus across processes."""
        return self._r.lock(self._k.corpus_lock(corpus), timeout=timeout_s, blocking_timeout=600)

    def commit(
        self,
        corpus: str,
        *,
        placements: Mapping[str, DocumentEntry],
        removed_sources: Iterable[str] = (),
    ) -> CommitResult:
        """Point each source at its document (`placements`) and drop `removed_sources`.

        Call under `lock(corpus)`, after the store holds the new documents' points. Returns
        the documents left without any source, whose points the caller deletes.
        """
        docs_key = self._k.corpus_docs(corpus)
        sources_key = self._k.corpus_sources(corpus)
        touched: dict[str, DocumentEntry] = {}
        source_moves: dict[str, str | None] = {}

        def entry(doc_id: str) -> DocumentEntry | None:
            if doc_id not in touched:
                found = self.document(corpus, doc_id)
                if found is None:
                    return None
                touched[doc_id] = found
            return touched[doc_id]

        def detach(source: str) -> None:
            old = self.source_doc(corpus, source)
            old_entry = entry(old) if old else None
            if old_entry is not None and source in old_entry.sources:
                old_entry.sources.remove(source)

        for source, doc in placements.items():
            current = entry(doc.doc_id)
            if current is None or current.chunking != doc.chunking:
                kept = list(current.sources) if current else []
                current = DocumentEntry(**{**asdict(doc), "sources": kept})
                touched[doc.doc_id] = current
            if self.source_doc(corpus, source) != doc.doc_id:
                detach(source)
                source_moves[source] = doc.doc_id
            if source not in current.sources:
                current.sources.append(source)
        for source in removed_sources:
            if source not in placements and self.source_doc(corpus, source) is not None:
                detach(source)
                source_moves[source] = None

        before = self._r.hmget(docs_key, list(touched)) if touched else []
        changed = bool(source_moves) or any(
            (old.decode() if old else None) != e.to_json()
            for old, e in zip(before, touched.values(), strict=True)
        )
        if not changed:
            return CommitResult(changed=False, version=self.version(corpus), orphaned=[])
        orphaned = [d for d, e in touched.items() if not e.sources]
        pipe = self._r.pipeline(transaction=True)
        pipe.sadd(self._k.corpora(), corpus)
        for source, target in source_moves.items():
            if target is None:
                pipe.hdel(sources_key, source)
            else:
                pipe.hset(sources_key, source, target)
        for doc_id, e in touched.items():
            if e.sources:
                pipe.hset(docs_key, doc_id, e.to_json())
            else:
                pipe.hdel(docs_key, doc_id)
        pipe.incr(self._k.corpus_version(corpus))
        version = int(pipe.execute()[-1])
        return CommitResult(changed=True, version=version, orphaned=orphaned)

    def drop(self, corpus: str) -> None:
        pipe = self._r.pipeline(transaction=True)
        pipe.delete(self._k.corpus_docs(corpus), self._k.corpus_sources(corpus))
        pipe.srem(self._k.corpora(), corpus)
        pipe.incr(self._k.corpus_version(corpus))
        pipe.execute()

