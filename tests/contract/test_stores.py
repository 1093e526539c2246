"""Runs the store contract against every implementation, plus what is peculiar to each."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from shared.settings import QdrantSettings, Settings
from shared.vectors.store.base import VectorStore
from shared.vectors.store.edge import EdgeStore
from shared.vectors.store.factory import open_store
from shared.vectors.store.qdrant import QdrantStore
from tests.support.store_contract import (
    DIM,
    ENCODER,
    PersistentStoreContract,
    StoreContract,
    bm25_scores,
    chunk,
    unit,
)

REPO = Path(__file__).resolve().parents[2]
QDRANT_IMAGE = os.environ.get("RAG_TEST_QDRANT_IMAGE", "qdrant/qdrant:latest")

StoreFactory = Callable[[], VectorStore]


@pytest.fixture
def opened() -> Iterator[list[VectorStore]]:
    """Every store a test opens, closed at the end whatever happened."""
    stores: list[VectorStore] = []
    yield stores
    for store in reversed(stores):
        store.close()


# -- qdrant-edge -----------------------------------------------------------------------------


class TestEdgeStore(StoreContract, PersistentStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path, opened: list[VectorStore]) -> StoreFactory:
        def factory() -> VectorStore:
            opened.append(EdgeStore(tmp_path / "edge"))
            return opened[-1]

        return factory

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> VectorStore:
        return store_factory()

    def test_writes_survive_a_crash_without_close(self, tmp_path: Path) -> None:
        # Another process writes and dies without flush or close; the WAL has the data.
        script = textwrap.dedent(
            f"""
            import os
            from pathlib import Path
            from shared.vectors.store.edge import EdgeStore
            from tests.support.store_contract import chunk
            store = EdgeStore(Path({str(tmp_path / "edge")!r}))
            store.ensure_corpus("papers", dim={DIM})
            store.upsert("papers", [chunk("papers", "d1", i, text="genes") for i in range(3)])
            store.delete_documents("papers", ["nothing"])
            os._exit(0)
            """
        )
        subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
        store = EdgeStore(tmp_path / "edge")
        try:
            assert store.count("papers") == 3
            assert store.doc_ids("papers") == {"d1"}
        finally:
            store.close()

    def test_closed_store_reopens_its_shards_on_next_use(self, store: EdgeStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", "d1", 0, text="genes")])
        store.close()
        assert store.count("papers") == 1
        assert store.search_sparse("papers", ENCODER.encode_query("gene"), limit=1)

    def test_bm25_idf_counts_live_points_after_deletes_reopens_and_rewrites(
        self, store: EdgeStore
    ) -> None:
        """The shard's own statistics count deleted points until it is reopened; the store
        asks for live ones meanwhile, and an overwrite (same id, same content) needs neither."""
        store.ensure_corpus("papers", dim=DIM)
        texts = {f"d{i}": "genes" if i < 4 else "proteins" for i in range(10)}
        points = {doc: chunk("papers", doc, 0, text=text) for doc, text in texts.items()}
        store.upsert("papers", list(points.values()))

        def scores_match(live: dict[str, str]) -> None:
            found = store.search_sparse("papers", ENCODER.encode_query("genes"), limit=20)
            expected = bm25_scores({p.id: live[d] for d, p in points.items() if d in live}, "genes")
            assert {h.id: h.score for h in found} == pytest.approx(expected, rel=1e-3)

        scores_match(texts)
        store.upsert("papers", [points[d] for d in ("d0", "d1", "d5")])  # redelivered
        scores_match(texts)
        store.delete_documents("papers", ["d5", "d6", "d7", "d8"])
        live = {d: t for d, t in texts.items() if d not in {"d5", "d6", "d7", "d8"}}
        scores_match(live)
        store.close()  # reopened on next use, its statistics counted afresh
        scores_match(live)
        store.optimize("papers")
        scores_match(live)

    def test_a_shard_is_owned_by_one_store_at_a_time(
        self, tmp_path: Path, store: EdgeStore
    ) -> None:
        store.ensure_corpus("papers", dim=DIM)
        intruder = EdgeStore(tmp_path / "edge")
        with pytest.raises(Exception, match="WAL"):
            intruder.count("papers")
        intruder.close()

    def test_close_and_drop_wait_for_queries_in_flight(self, store: EdgeStore) -> None:
        # Unguarded, a query racing close() fails with "Shard is not initialized".
        store.ensure_corpus("papers", dim=DIM)
        store.ensure_corpus("notes", dim=DIM)
        for corpus in ("papers", "notes"):
            store.upsert(corpus, [chunk(corpus, f"d{i}", 0, text="gene") for i in range(200)])
        errors: list[BaseException] = []
        stop = threading.Event()

        def query(corpus: str) -> None:
            try:
                while not stop.is_set():
                    store.search_dense(corpus, unit(1.0), limit=5)
                    store.search_sparse(corpus, ENCODER.encode_query("gene"), limit=5)
                    store.count(corpus)
            except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
                errors.append(exc)

        def write(corpus: str, offset: int) -> None:
            try:
                for batch in range(20):
                    doc = f"w{offset + batch}"
                    store.upsert(corpus, [chunk(corpus, doc, i, text="gene") for i in range(10)])
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        readers = [threading.Thread(target=query, args=(c,)) for c in ("papers", "notes") * 2]
        writers = [threading.Thread(target=write, args=("papers", n * 100)) for n in range(2)]
        for thread in readers + writers:
            thread.start()
        for _ in range(5):
            store.close()  # shards reopen on the next query
        for thread in writers:
            thread.join(timeout=60)
        store.drop_corpus("notes")
        stop.set()
        for thread in readers:
            thread.join(timeout=60)
        assert not errors, errors
        assert store.count("papers") == 200 + 2 * 20 * 10  # two writers at once: nothing lost
        assert store.corpora() == ["papers"] and store.count("notes") == 0

    def test_optimize_keeps_results(self, store: EdgeStore) -> None:
        store.ensure_corpus("papers", dim=DIM)
        store.upsert("papers", [chunk("papers", f"d{i}", 0, text=f"gene {i}") for i in range(50)])
        before = store.search_dense("papers", unit(1.0), limit=5)
        store.optimize("papers")
        assert store.info("papers")["points"] == 50
        assert [h.id for h in store.search_dense("papers", unit(1.0), limit=5)] == [
            h.id for h in before
        ]
        assert store.optimize("missing") is False


# -- qdrant-client local mode ----------------------------------------------------------------


class TestQdrantLocalPath(StoreContract, PersistentStoreContract):
    @pytest.fixture
    def store_factory(self, tmp_path: Path, opened: list[VectorStore]) -> StoreFactory:
        def factory() -> VectorStore:
            opened.append(QdrantStore(QdrantClient(path=str(tmp_path / "qdrant-local"))))
            return opened[-1]

        return factory

    @pytest.fixture
    def store(self, store_factory: StoreFactory) -> VectorStore:
        return store_factory()


class TestQdrantMemory(StoreContract):
    @pytest.fixture
    def store(self, opened: list[VectorStore]) -> VectorStore:
        opened.append(QdrantStore(QdrantClient(":memory:")))
        return opened[-1]


# -- Qdrant server (testcontainers) ----------------------------------------------------------


def docker_unavailable() -> str | None:
    """Why no Docker engine can be used here, or None. Answers within a few seconds."""
    host = os.environ.get("DOCKER_HOST")
    if not host and not Path("/var/run/docker.sock").exists():
        return "no Docker engine: DOCKER_HOST is unset and /var/run/docker.sock does not exist"
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "cannot use it"
        return f"Docker engine at {host or 'unix:///var/run/docker.sock'} unreachable: {exc}"
    return None


@pytest.fixture(scope="session")
def qdrant_server() -> Iterator[str]:
    """URL of a Qdrant server in a container, shared by the session."""
    reason = docker_unavailable()
    if reason:
        pytest.skip(f"Qdrant server tests need Docker ({QDRANT_IMAGE}): {reason}")
    from testcontainers.community.qdrant import QdrantContainer

    with QdrantContainer(image=QDRANT_IMAGE) as container:
        yield f"http://{container.rest_host_address}"


class TestQdrantServer(StoreContract):
    @pytest.fixture
    def store(self, qdrant_server: str, opened: list[VectorStore]) -> Iterator[VectorStore]:
        # A fresh prefix per test: isolated collections on the shared server.
        store = QdrantStore(
            QdrantClient(url=qdrant_server), collection_prefix=f"t{uuid.uuid4().hex[:12]}_"
        )
        opened.append(store)
        yield store
        for corpus in store.corpora():
            store.drop_corpus(corpus)

    def test_doc_id_is_indexed(self, store: QdrantStore, qdrant_server: str) -> None:
        store.ensure_corpus("papers", dim=DIM)
        client = QdrantClient(url=qdrant_server)
        collection = next(
            c.name
            for c in client.get_collections().collections
            if c.name.endswith("papers") and c.name.startswith(store._prefix)
        )
        assert "doc_id" in (client.get_collection(collection).payload_schema or {})
        client.close()

    def test_factory_opens_the_configured_server(self, qdrant_server: str, tmp_path: Path) -> None:
        store = open_store(Settings(data_dir=tmp_path, qdrant=QdrantSettings(url=qdrant_server)))
        try:
            assert isinstance(store, QdrantStore) and store.healthy()
        finally:
            store.close()


# -- factory ---------------------------------------------------------------------------------


def test_factory_defaults_to_edge_under_the_store_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, qdrant=QdrantSettings(url=None))
    store = open_store(settings)
    try:
        assert isinstance(store, EdgeStore)
        store.ensure_corpus("papers", dim=DIM)
        assert (settings.store_dir / "edge" / "papers").is_dir()
    finally:
        store.close()


def test_factory_client_engine_uses_local_mode(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, qdrant=QdrantSettings(url=None, local_engine="client"))
    store = open_store(settings)
    try:
        assert isinstance(store, QdrantStore)
        store.ensure_corpus("papers", dim=DIM)
        assert store.corpora() == ["papers"]
        assert (settings.store_dir / "qdrant-local").is_dir()
    finally:
        store.close()


def test_unreachable_server_is_unhealthy() -> None:
    store = QdrantStore(
        QdrantClient(url="http://127.0.0.1:9", timeout=1, check_compatibility=False)
    )
    try:
        assert store.healthy() is False
    finally:
        store.close()
