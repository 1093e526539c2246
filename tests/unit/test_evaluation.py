"""BEIR loading, chunk -> document rankings, and ranx metrics against hand-computed values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from shared.search.evaluation import (
    METRICS,
    DatasetError,
    document_ranking,
    document_run,
    evaluate_runs,
    load_beir,
)


def chunks(*external_ids: str | None) -> list[dict[str, object]]:
    """Ranked /search results: one chunk per entry, scores falling."""
    return [
        {"chunk_id": f"c{i}", "external_id": e, "score": 1.0 - i / 100}
        for i, e in enumerate(external_ids)
    ]


# -- documents rank by their best chunk -------------------------------------------------------


def test_a_document_ranks_where_its_best_chunk_ranks() -> None:
    results = chunks("d4", "d1", "d4", "d2", "d1")
    assert document_ranking(results) == ["d4", "d1", "d2"]


def test_chunks_without_an_external_id_are_skipped() -> None:
    assert document_ranking(chunks(None, "d1", None, "d2")) == ["d1", "d2"]
    assert document_ranking([]) == []


def test_numeric_external_ids_become_strings() -> None:
    assert document_ranking([{"external_id": 31715818}]) == ["31715818"]


def test_document_run_scores_fall_with_rank_so_ties_keep_the_service_order() -> None:
    # Equal service scores (RRF ties are common) must not be re-sorted by id.
    run = document_run({"q": ["b", "a", "c"]})
    assert list(run["q"]) == ["b", "a", "c"]
    assert run["q"]["b"] > run["q"]["a"] > run["q"]["c"]
    scores = evaluate_runs({"q": {"b": 1}}, {"m": run})["m"]
    assert scores["mrr@10"] == 1.0


# -- metrics, by hand ---------------------------------------------------------------------------

QRELS = {
    "q1": {"d1": 1, "d2": 1},
    "q2": {"d3": 1},
    "q3": {"d7": 1, "d8": 1},
    "q4": {"d9": 1},
}
RANKINGS = {
    # d1 at rank 2, d2 at rank 3 (d4's two chunks and d1's second chunk count once).
    "q1": document_ranking(chunks("d4", "d1", "d4", "d2", "d1")),
    # d3 at rank 3.
    "q2": ["d5", "d6", "d3"],
    # d7 at rank 12: outside the top 10, inside the top 100; d8 never found.
    "q3": [f"x{i}" for i in range(11)] + ["d7"],
    # q4: nothing came back.
    "q4": [],
}


def log2(x: float) -> float:
    return math.log(x, 2)


def test_metrics_match_hand_computed_values() -> None:
    ndcg_q1 = (1 / log2(3) + 1 / log2(4)) / (1 + 1 / log2(3))  # 0.6934...
    ndcg_q2 = (1 / log2(4)) / 1  # 0.5
    expected = {
        "ndcg@10": (ndcg_q1 + ndcg_q2 + 0 + 0) / 4,
        "recall@100": (1 + 1 + 0.5 + 0) / 4,
        "mrr@10": (1 / 2 + 1 / 3 + 0 + 0) / 4,
    }
    scores = evaluate_runs(QRELS, {"bm25": document_run(RANKINGS)})
    assert set(scores) == {"bm25"}
    assert set(scores["bm25"]) == set(METRICS)
    for metric, value in expected.items():
        assert scores["bm25"][metric] == pytest.approx(value, abs=1e-9), metric
    assert scores["bm25"]["ndcg@10"] == pytest.approx(0.2983565, abs=1e-6)


def test_a_perfect_run_scores_one_and_queries_missing_from_a_run_score_zero() -> None:
    perfect = {"q1": ["d1", "d2"], "q2": ["d3"], "q3": ["d8", "d7"], "q4": ["d9"]}
    partial = {"q1": ["d1", "d2"]}  # three judged queries absent from the run
    scores = evaluate_runs(
        QRELS, {"perfect": document_run(perfect), "partial": document_run(partial)}
    )
    assert scores["perfect"] == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}
    assert scores["partial"] == pytest.approx(
        {"ndcg@10": 0.25, "recall@100": 0.25, "mrr@10": 0.25}
    )


def test_results_for_unjudged_queries_are_ignored() -> None:
    run = document_run({"q2": ["d3"], "unjudged": ["d3"]})
    scores = evaluate_runs({"q2": {"d3": 1}}, {"m": run})
    assert scores["m"] == {"ndcg@10": 1.0, "recall@100": 1.0, "mrr@10": 1.0}


def test_a_run_with_no_results_at_all_scores_zero() -> None:
    scores = evaluate_runs(QRELS, {"m": document_run({q: [] for q in QRELS})})
    assert scores["m"] == {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}


def test_no_judged_queries_is_an_error() -> None:
    with pytest.raises(DatasetError, match="no judged queries"):
        evaluate_runs({}, {"m": {}})


# -- reading a BEIR folder ------------------------------------------------------------------------


def write_beir(root: Path) -> Path:
    root.mkdir(parents=True)
    corpus = [{"_id": f"d{i}", "title": f"T{i}", "text": f"text {i}"} for i in range(4)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    queries = [
        {"_id": "1", "text": "first claim", "metadata": {"evidence": "never read"}},
        {"_id": "2", "text": "second claim", "metadata": {}},
        {"_id": "3", "text": "unjudged claim", "metadata": {}},
        {"_id": "4", "text": "only a zero judgment", "metadata": {}},
    ]
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries) + "\n")
    (root / "qrels").mkdir()
    (root / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\n1\td0\t1\n1\td2\t1\n2\td3\t2\n4\td1\t0\n"
    )
    return root


def test_load_beir_keeps_only_queries_with_a_relevant_judgment(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny")
    dataset = load_beir(root, split="train")
    assert dataset.name == "tiny"
    assert dataset.split == "train"
    assert dataset.corpus_path == root / "corpus.jsonl"
    assert dataset.queries == {"1": "first claim", "2": "second claim"}
    assert dataset.qrels == {"1": {"d0": 1, "d2": 1}, "2": {"d3": 2}}


def test_an_unknown_split_names_the_splits_there(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny")
    with pytest.raises(DatasetError, match=r"qrels/test\.tsv: not found; splits here: train"):
        load_beir(root, split="test")


def test_a_folder_without_corpus_is_refused(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny")
    (root / "corpus.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"corpus\.jsonl: not found"):
        load_beir(root, split="train")


def test_a_judged_query_missing_from_queries_is_refused(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny")
    with (root / "qrels" / "train.tsv").open("a") as f:
        f.write("99\td0\t1\n")
    with pytest.raises(DatasetError, match="1 judged queries are not in queries.jsonl"):
        load_beir(root, split="train")


def test_a_malformed_qrels_line_names_the_line(tmp_path: Path) -> None:
    root = write_beir(tmp_path / "tiny")
    with (root / "qrels" / "train.tsv").open("a") as f:
        f.write("5\td0\n")
    with pytest.raises(DatasetError, match="train.tsv, line 6: expected query-id"):
        load_beir(root, split="train")
