"""Contract tests every `VectorStore` passes, written once (as haystack's document store tests).

Subclass `StoreContract` in a test class that provides a `store` fixture: a fresh, empty store
of its own (a new directory, or a unique collection prefix on a shared server). Stores that
live on disk also subclass `PersistentStoreContract` and provide `store_factory`, which opens
another store on the same location.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from shared.vectors.bm25 import Bm25Encoder
from shared.vectors.store.base import ChunkPoint, SparseVector, StoredHit, VectorStore

DIM = 8
ENCODER = Bm25Encoder(k1=1.2, b=0.75, avg_len=6.0, stemmer="english", stopwords=True)


def point_id(corpus: str, doc_id: str, index: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"{corpus}/{doc_id}/{index}"))


def unit(*components: float) -> list[float]:
    """A DIM-d vector from its leading components (rest zero), scaled to length 1."""
    vector = list(components) + [0.0] * (DIM - len(components))
    norm = math.sqrt(sum(c * c for c in vector))
    return [c / norm for c in vector]


def angle_vector(degrees: float) -> list[float]:
    """A unit vector in the plane of the first two axes; cosine to `angle_vector(0)` is cos(deg)."""
    radians = math.radians(degrees)
    return unit(math.cos(radians), math.sin(radians))


def chunk(
    corpus: str,
    doc_id: str,
    index: int,
    *,
    text: str = "",
    dense: Sequence[float] | None = None,
    **extra: Any,
) -> ChunkPoint:
    payload: dict[str, Any] = {
        "corpus": corpus,
        "doc_id": doc_id,
        "chunk_index": index,
        "text": text,
        "page": 1,
        "char_start": 0,
        "char_end": len(text),
        "title": f"title of {doc_id}",
        "source": f"{doc_id}.txt",
        "external_id": None,
    }
    payload.update(extra)
    return ChunkPoint(
        id=point_id(corpus, doc_id, index),
        dense=list(dense) if dense is not None else unit(1.0, float(index), float(len(doc_id))),
        sparse=ENCODER.encode_document(text),
        payload=payload,
    )


def bm25_scores(texts: dict[str, str], query: str) -> dict[str, float]:
    """Reference BM25 with Qdrant's IDF, ln(1 + (N - n + 0.5) / (n + 0.5)), per point id."""
    docs = {pid: ENCODER.encode_document(text) for pid, text in texts.items()}
    docs = {pid: v for pid, v in docs.items() if v.indices}
    n_docs = len(docs)
    scores: dict[str, float] = {}
    for index in ENCODER.encode_query(query).indices:
        having = [pid for pid, v in docs.items() if index in v.indices]
        idf = math.log(1 + (n_docs - len(having) + 0.5) / (len(having) + 0.5))
        for pid in having:
            weight = docs[pid].values[docs[pid].indices.index(index)]
            scores[pid] = scores.get(pid, 0.0) + idf * weight
    return scores


def ids(hits: list[StoredHit]) -> list[str]:
    return [h.id for h in hits]


def assert_sorted(hits: list[StoredHit]) -> None:
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True), scores


ABSTRACTS = {
    "d-genes": "Gene expression profiling of tumour cells reveals regulatory genes.",
    "d-covid": "COVID-19 vaccination reduced hospital admissions; covid-19 deaths fell.",
    "d-mice": "Mice lacking the gene showed altered expression of inflammatory markers.",
    "d-sleep": "Sleep deprivation impairs memory consolidation in healthy adults.",
    "d-long": (
        "A long review of expression studies across tissues, organs, species, cohorts, "
        "platforms, protocols, pipelines and normalisation methods used in genomics."
    ),
}


class StoreContract:
    """Behaviour every `VectorStore` implementation must show."""

    # -- lifecycle --------------------------------------------------------------------------

    def test_is_a_vector_store_and_starts_empty(self, store: VectorStore) -> None:
        assert isinstance(store, VectorStore)
        assert store.healthy()
        assert store.corpora() == []

    def test_ensure_corpus_is_idempotent_and_listed(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.ensure_corpus("papers", dim=DIM)
        store.ensure_corpus("notes", dim=DIM)
        assert store.corpora() == ["notes", "papers"]
        assert store.count("papers") == 0
        assert store.doc_ids("papers") == set()

    def test_ensure_corpus_refuses_another_dimension(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        with pytest.raises(ValueError, match="8-d"):
            store.ensure_corpus("papers", dim=DIM * 2)

    def test_invalid_corpus_name_is_refused(self, store: VectorStore) -> None:
        for name in ("../escape", "", "a/b", "with space"):
            with pytest.raises(ValueError, match="invalid corpus name"):
                store.ensure_corpus(name, dim=DIM)

    def test_drop_corpus_removes_it_and_allows_recreation(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", "d1", 0, text="alpha beta")])
        store.drop_corpus("papers")
        assert store.corpora() == []
        assert store.count("papers") == 0
        assert store.search_dense("papers", unit(1.0), limit=5) == []
        store.drop_corpus("papers")  # dropping what is not there is fine
        store.ensure_corpus("papers", dim=4)
        assert store.count("papers") == 0

    # -- writes -----------------------------------------------------------------------------

    def test_upsert_is_idempotent_on_point_id(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        points = [chunk("papers", "d1", i, text=f"chunk {i} about genes") for i in range(5)]
        store.upsert("papers", points)
        store.upsert("papers", points)
        store.upsert("papers", points[:2])
        assert store.count("papers") == 5
        assert store.count("papers", doc_id="d1") == 5

    def test_upsert_replaces_payload_and_vectors_of_same_id(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", "d1", 0, text="old text", dense=unit(1.0))])
        store.upsert("papers", [chunk("papers", "d1", 0, text="new text", dense=unit(0.0, 1.0))])
        assert store.count("papers") == 1
        [hit] = store.search_dense("papers", unit(0.0, 1.0), limit=5)
        assert hit.payload["text"] == "new text"
        assert hit.score == pytest.approx(1.0, abs=1e-5)
        assert store.search_sparse("papers", ENCODER.encode_query("old"), limit=5) == []

    def test_upsert_into_unknown_corpus_raises(self, store: VectorStore) -> None:
        with pytest.raises(LookupError, match="ensure_corpus"):
            store.upsert("missing", [chunk("missing", "d1", 0, text="x")])

    def test_upsert_nothing_is_a_no_op(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [])
        assert store.count("papers") == 0

    def test_delete_documents_removes_all_their_chunks(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        for doc in ("d1", "d2", "d3"):
            store.upsert("papers", [chunk("papers", doc, i, text=f"{doc} genes") for i in range(4)])
        assert store.doc_ids("papers") == {"d1", "d2", "d3"}
        assert store.count("papers") == 12

        store.delete_documents("papers", ["d1", "d3", "never-indexed"])
        assert store.count("papers") == 4
        assert store.count("papers", doc_id="d1") == 0
        assert store.count("papers", doc_id="d2") == 4
        assert store.doc_ids("papers") == {"d2"}
        found = store.search_dense("papers", unit(1.0), limit=20)
        assert {h.payload["doc_id"] for h in found} == {"d2"}
        found = store.search_sparse("papers", ENCODER.encode_query("genes"), limit=20)
        assert {h.payload["doc_id"] for h in found} == {"d2"}
        # deleted chunks no longer count in the IDF statistics
        expected = bm25_scores({h.id: "d2 genes" for h in found}, "genes")
        assert [h.score for h in found] == pytest.approx([expected[h.id] for h in found], rel=1e-3)

        store.delete_documents("papers", [])
        assert store.count("papers") == 4

    def test_doc_ids_lists_every_document(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        docs = [f"doc-{i:03d}" for i in range(300)]
        store.upsert("papers", [chunk("papers", d, j) for d in docs for j in range(2)])
        assert store.doc_ids("papers") == set(docs)
        assert store.count("papers") == 600

    # -- reads ------------------------------------------------------------------------------

    def test_dense_search_orders_by_cosine(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        angles = {"a0": 0, "a10": 10, "a30": 30, "a60": 60, "a90": 90, "a180": 180}
        # not normalised on purpose: cosine must ignore length
        points = [
            chunk("papers", name, 0, dense=[3.0 * c for c in angle_vector(deg)])
            for name, deg in angles.items()
        ]
        store.upsert("papers", points)
        hits = store.search_dense("papers", angle_vector(3), limit=10)
        assert [h.payload["doc_id"] for h in hits] == ["a0", "a10", "a30", "a60", "a90", "a180"]
        assert_sorted(hits)
        for hit in hits:
            expected = math.cos(math.radians(angles[hit.payload["doc_id"]] - 3))
            assert hit.score == pytest.approx(expected, abs=1e-4)
        top = store.search_dense("papers", angle_vector(70), limit=2)
        assert [h.payload["doc_id"] for h in top] == ["a60", "a90"]

    def test_hits_carry_uuid_string_ids(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        point = chunk("papers", "d1", 0, text="genes")
        store.upsert("papers", [point])
        for hit in store.search_dense("papers", point.dense, limit=1) + store.search_sparse(
            "papers", ENCODER.encode_query("gene"), limit=1
        ):
            assert isinstance(hit.id, str)
            assert hit.id == point.id == str(uuid.UUID(hit.id))

    def test_sparse_search_is_bm25(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        points = [chunk("papers", doc, 0, text=text) for doc, text in ABSTRACTS.items()]
        store.upsert("papers", points)
        texts = {p.id: p.payload["text"] for p in points}
        for query in ("gene expression", "covid-19 deaths", "memory in mice", "genomics"):
            expected = bm25_scores(texts, query)
            hits = store.search_sparse("papers", ENCODER.encode_query(query), limit=10)
            assert_sorted(hits)
            assert {h.id for h in hits} == set(expected), query
            for hit in hits:
                assert hit.score == pytest.approx(expected[hit.id], rel=1e-3), query
        # the short abstract that says "gene(s)" and "expression" beats the long one
        ranked = store.search_sparse("papers", ENCODER.encode_query("gene expression"), limit=3)
        assert ranked[0].payload["doc_id"] in {"d-genes", "d-mice"}
        assert ranked[-1].payload["doc_id"] == "d-long"
        # "COVID19" is one token however it is spelled
        [hit] = store.search_sparse("papers", ENCODER.encode_query("covid19"), limit=10)
        assert hit.payload["doc_id"] == "d-covid"

    def test_sparse_search_without_matches_or_terms(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", "d1", 0, text="gene expression")])
        assert store.search_sparse("papers", ENCODER.encode_query("astronomy"), limit=5) == []
        assert store.search_sparse("papers", SparseVector(indices=[], values=[]), limit=5) == []

    def test_chunk_of_stop_words_only_is_stored_without_bm25(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        empty = chunk("papers", "d1", 0, text="and the of", dense=unit(1.0))
        assert empty.sparse.indices == []
        store.upsert(
            "papers", [empty, chunk("papers", "d1", 1, text="genes", dense=unit(0.0, 1.0))]
        )
        assert store.count("papers") == 2
        assert store.search_dense("papers", unit(1.0), limit=1)[0].id == empty.id
        assert ids(store.search_sparse("papers", ENCODER.encode_query("genes"), limit=5)) == [
            point_id("papers", "d1", 1)
        ]

    def test_limit_is_respected(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", "d1", i, text="genes genes") for i in range(10)])
        assert len(store.search_dense("papers", unit(1.0), limit=3)) == 3
        assert len(store.search_sparse("papers", ENCODER.encode_query("genes"), limit=4)) == 4
        assert len(store.search_dense("papers", unit(1.0), limit=50)) == 10

    def test_payload_round_trips(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        point = chunk(
            "papers",
            "d-ünï",
            7,
            text="Naïve Bayes – 東京 résumé 🧪 “quoted” \\ back\nslash",
            dense=unit(1.0),
            page=12,
            char_start=0,
            big_int=2**53,
            negative=-3,
            ratio=0.25,
            flag=False,
            missing=None,
            authors=["Ada", "Émile"],
            meta={"year": 2021, "venue": None},
        )
        store.upsert("papers", [point])
        [hit] = store.search_dense("papers", unit(1.0), limit=1)
        assert hit.payload == point.payload
        assert isinstance(hit.payload["page"], int) and isinstance(hit.payload["big_int"], int)
        assert hit.payload["missing"] is None and hit.payload["external_id"] is None
        assert store.doc_ids("papers") == {"d-ünï"}
        assert store.count("papers", doc_id="d-ünï") == 1

    def test_searches_return_the_fields_asked_for_and_payloads_the_rest(
        self, store: VectorStore
    ) -> None:
        store.ensure_corpus("papers", dim=DIM)
        first = chunk("papers", "d1", 0, text="gene expression in yeast", dense=unit(1.0))
        second = chunk("papers", "d2", 0, text="protein folding", dense=unit(1.0, 1.0))
        store.upsert("papers", [first, second])
        dense = store.search_dense("papers", unit(1.0), limit=2, fields=["doc_id"])
        assert [(h.id, h.payload) for h in dense] == [
            (first.id, {"doc_id": "d1"}), (second.id, {"doc_id": "d2"})
        ]
        [sparse] = store.search_sparse(
            "papers", ENCODER.encode_query("yeast genes"), limit=5, fields=["doc_id"]
        )
        assert (sparse.id, sparse.payload) == (first.id, {"doc_id": "d1"})
        missing = point_id("papers", "gone", 0)
        assert store.payloads("papers", [second.id, missing, first.id]) == {
            first.id: first.payload, second.id: second.payload
        }
        assert store.payloads("papers", []) == {}
        assert store.payloads("missing", [first.id]) == {}
        # fields=(): ids and scores only (ranking's lists, shared/search/chunk_documents.py)
        bare = store.search_dense("papers", unit(1.0), limit=2, fields=())
        assert [(h.id, h.payload) for h in bare] == [(first.id, {}), (second.id, {})]
        [bare_sparse] = store.search_sparse(
            "papers", ENCODER.encode_query("yeast genes"), limit=5, fields=()
        )
        assert (bare_sparse.id, bare_sparse.payload) == (first.id, {})
        assert store.payloads("papers", [first.id, missing], fields=["doc_id"]) == {
            first.id: {"doc_id": "d1"}
        }

    def test_unknown_corpus_reads_as_empty(self, store: VectorStore) -> None:
        assert store.search_dense("missing", unit(1.0), limit=5) == []
        assert store.search_sparse("missing", ENCODER.encode_query("genes"), limit=5) == []
        assert store.count("missing") == 0
        assert store.count("missing", doc_id="d1") == 0
        assert store.doc_ids("missing") == set()
        store.delete_documents("missing", ["d1"])
        store.drop_corpus("missing")
        assert store.corpora() == []

    def test_corpora_are_isolated(self, store: VectorStore) -> None:
        store.ensure_corpus("alpha", dim=DIM)
        store.ensure_corpus("beta", dim=DIM)
        shared_id = point_id("x", "d1", 0)  # the same point id in both corpora
        a = ChunkPoint(shared_id, unit(1.0), ENCODER.encode_document("genes"), {"doc_id": "a-doc"})
        b = ChunkPoint(shared_id, unit(0.0, 1.0), ENCODER.encode_document("sleep"), {"doc_id": "b"})
        store.upsert("alpha", [a, chunk("alpha", "a-doc", 1, text="genes and sleep")])
        store.upsert("beta", [b])
        assert (store.count("alpha"), store.count("beta")) == (2, 1)
        assert store.doc_ids("alpha") == {"a-doc"} and store.doc_ids("beta") == {"b"}
        [hit] = store.search_dense("beta", unit(1.0), limit=5)
        assert hit.payload == {"doc_id": "b"}
        assert store.search_sparse("beta", ENCODER.encode_query("genes"), limit=5) == []
        # IDF is per corpus: "sleep" is in every beta point, in half of alpha's
        beta_sleep = store.search_sparse("beta", ENCODER.encode_query("sleep"), limit=5)
        tf_part = ENCODER.encode_document("sleep").values[0]
        assert beta_sleep[0].score == pytest.approx(math.log(1 + 0.5 / 1.5) * tf_part, rel=1e-3)

        store.delete_documents("beta", ["a-doc"])  # alpha's document: nothing to do in beta
        assert store.count("alpha") == 2
        store.drop_corpus("alpha")
        assert store.corpora() == ["beta"]
        assert store.count("beta") == 1

    # -- threads ----------------------------------------------------------------------------

    def test_queries_run_while_another_thread_upserts(self, store: VectorStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", "seed", i, text="genes") for i in range(20)])
        errors: list[BaseException] = []
        done = threading.Event()

        def write() -> None:
            try:
                for batch in range(10):
                    doc = f"w{batch}"
                    store.upsert(
                        "papers", [chunk("papers", doc, i, text="gene") for i in range(20)]
                    )
                    if batch % 3 == 2:
                        store.delete_documents("papers", [f"w{batch - 1}"])
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)
            finally:
                done.set()

        def read() -> None:
            try:
                while not done.is_set():
                    assert len(store.search_dense("papers", unit(1.0), limit=5)) == 5
                    assert store.search_sparse("papers", ENCODER.encode_query("gene"), limit=5)
                    assert store.count("papers") >= 20
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=write)] + [
            threading.Thread(target=read) for _ in range(3)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert store.count("papers") == 20 + 10 * 20 - 3 * 20


class PersistentStoreContract:
    """What a store on disk keeps across close and reopen (another process, later)."""

    def test_data_survives_close_and_reopen(
        self, store: VectorStore, store_factory: Callable[[], VectorStore]
    ) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.ensure_corpus("notes", dim=DIM)
        points = [
            chunk("papers", doc, 0, text=t, dense=unit(1.0, i))
            for i, (doc, t) in enumerate(ABSTRACTS.items())
        ]
        store.upsert("papers", points)
        store.delete_documents("papers", ["d-sleep"])
        store.drop_corpus("notes")
        before_dense = store.search_dense("papers", unit(1.0), limit=10)
        before_sparse = store.search_sparse(
            "papers", ENCODER.encode_query("gene expression"), limit=10
        )
        store.close()

        reopened = store_factory()
        assert reopened.corpora() == ["papers"]
        assert reopened.count("papers") == 4
        assert reopened.doc_ids("papers") == set(ABSTRACTS) - {"d-sleep"}
        after_dense = reopened.search_dense("papers", unit(1.0), limit=10)
        assert ids(after_dense) == ids(before_dense)
        assert after_dense[0].payload == before_dense[0].payload
        after_sparse = reopened.search_sparse(
            "papers", ENCODER.encode_query("gene expression"), limit=10
        )
        assert ids(after_sparse) == ids(before_sparse)
        assert [h.score for h in after_sparse] == pytest.approx([h.score for h in before_sparse])
        # and it still takes writes
        reopened.upsert("papers", [chunk("papers", "d-new", 0, text="new genes")])
        assert reopened.count("papers") == 5
        reopened.close()
