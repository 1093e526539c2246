"""Which document each chunk belongs to, remembered by the process.

Hybrid ranking reads the document of every candidate in both lists (convex fusion scores a
document's best chunk with the document's best value in each list), but shows only a page.
Asking the store for each candidate's `doc_id` cost ~1 ms per list of 300 on the embedded
store (bench/search_latency.py), more across a network. A chunk's point id is derived from
its document's id (`shared.identity.point_id`), so what is remembered for an id is true for
as long as the id exists: nothing here goes stale, and a corpus change needs no invalidation.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from shared.vectors.store.base import StoredHit, VectorStore

MAX_CHUNKS = 2_000_000  # ~200 MB at most; past it, forgotten and learnt again


class ChunkDocuments:
    def __init__(self, max_chunks: int = MAX_CHUNKS) -> None:
        self._doc: dict[str, str | None] = {}
        self._max = max_chunks
        self._lock = threading.Lock()

    def label(
        self, store: VectorStore, corpus: str, *lists: Sequence[StoredHit]
    ) -> list[list[StoredHit]]:
        """Each of `lists` (searched without payload) with payload {"doc_id": ...}; the store
        is asked once, about the chunks not seen before. A chunk deleted since its search is
        left out, as a search made a moment later would."""
        known = self._doc
        missing: set[str] = set()
        for hits in lists:
            for hit in hits:
                doc_id = known.get(hit.id, _UNSEEN)
                if doc_id is _UNSEEN:
                    missing.add(hit.id)
                else:
                    hit.payload["doc_id"] = doc_id
        if not missing:  # the usual case once a corpus has been searched a little
            return [list(hits) for hits in lists]
        found = store.payloads(corpus, sorted(missing), fields=("doc_id",))
        learnt = {chunk_id: payload.get("doc_id") for chunk_id, payload in found.items()}
        with self._lock:
            if len(self._doc) + len(learnt) > self._max:
                self._doc.clear()
            self._doc.update(learnt)
        out = []
        for hits in lists:
            kept = []
            for hit in hits:
                if hit.id in missing:
                    if hit.id not in learnt:
                        continue
                    hit.payload["doc_id"] = learnt[hit.id]
                kept.append(hit)
            out.append(kept)
        return out


_UNSEEN = object()
