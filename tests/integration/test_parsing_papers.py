"""Parsing the real research papers in ../shared/data/papers: the 17 good ones and the 5 broken."""

from __future__ import annotations

import re
import time

import pytest

from shared.documents import ParsedDocument
from shared.parsing import (
    EncryptedPdfError,
    MalformedPdfError,
    NoTextError,
    detect_format,
    parse_file,
    parse_file_with_timeout,
)
from tests.support.data import PAPERS, require  # noqa: E402

EDGE = PAPERS / "edge_cases"
LIMITS = {"max_pages": 2000, "max_bytes": 50 * 2**20}

@pytest.fixture(autouse=True)
def _papers() -> None:
    require(PAPERS)

# file -> (pages, title)
GOOD_PAPERS = {
    "1903.10676.pdf": (1, "1903.10676"),  # a table page: no metadata title, no heading
    "2020.acl-main.447.pdf": (15, "S2ORC: The Semantic Scholar Open Research Corpus"),
    "2023.eacl-main.121.pdf": (
        20,
        "LONGEVAL: Guidelines for Human Evaluation of Faithfulness in Long-form Summarization",
    ),
    "2203.00130v1.pdf": (
        39,
        (
            "Paper Plain: Making Medical Research Papers Approachable to Healthcare Consumers "
            "with Natural Language Processing"
        ),
    ),
    "2206.10883v3.pdf": (
        37,
        "Multi-LexSum: Real-World Summaries of Civil Rights Lawsuits at Multiple Granularities",
    ),
    "2302.07302v1.pdf": (
        15,
        (
            "CiteSee: Augmenting Citations in Scientific Papers with Persistent and Personalized "
            "Historical Context"
        ),
    ),
    "2304.02623v1.pdf": (
        4,
        "Beyond Summarization: Designing AI Support for Real-World Expository Writing Tasks",
    ),
    "2305.03393v1-pg9.pdf": (1, "2305.03393v1-pg9"),  # page 9 alone: body text only
    "example2.pdf": (
        10,
        (
            "Understanding the barriers to setting up a healthcare quality improvement process in "
            "resource-limited settings: a situational analysis at the Medical Department of Kamuzu "
            "Central Hospital in Lilongwe, Malawi"
        ),
    ),
    "example3.pdf": (
        13,
        (
            "Fragment-based design for the development of N-domain-selective "
            "angiotensin-1-converting enzyme inhibitors"
        ),
    ),
    "naacl06-shinyama.pdf": (
        8,
        "Preemptive Information Extraction using Unrestricted Relation Discovery",
    ),
    "paper.pdf": (41, "A Perspective on Explanations of Molecular Prediction Models"),
    "papermage.pdf": (
        13,
        (
            "PaperMage: A Unified Toolkit for Processing, Representing, and Manipulating "
            "Visually-Rich Scientific Documents"
        ),
    ),
    "pasa.pdf": (15, "PaSa: An LLM Agent for Comprehensive Academic Paper Search"),
    "test1.pdf": (
        4,
        (
            "Complications related to deep venous thrombosis prophylaxis in trauma: a systematic "
            "review of the literature"
        ),
    ),
    "test2.pdf": (6, "Patient Experiences of Structured Heart Failure Programmes"),
    "test6.pdf": (16, "VESPA: Very large-scale Evolutionary and Selective Pressure Analyses"),
}

# Sentences that run over several lines of one column of a two-column page.
COLUMN_PASSAGES = [
    (
        "2020.acl-main.447.pdf",
        1,
        (
            "Academic papers are an increasingly important textual domain for natural language "
            "processing (NLP) research."
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
            "Developing an in-depth understanding of the disease in patients is a fundamental "
            "aspect of therapy and essential for adherence to self-management practices [7]."
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
            "RXP407 is a phosphinic peptidomimetic ACE inhibitor that displays approximately "
            "three orders of magnitude N-selectivity [32]."
        ),
    ),
]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def parsed() -> dict[str, ParsedDocument]:
    return {name: parse_file(PAPERS / name, **LIMITS) for name in GOOD_PAPERS}


def test_the_corpus_is_the_one_described() -> None:
    assert sorted(p.name for p in PAPERS.glob("*.pdf")) == sorted(GOOD_PAPERS)


@pytest.mark.parametrize("name", sorted(GOOD_PAPERS))
def test_good_paper_parses_with_title_and_numbered_pages(
    parsed: dict[str, ParsedDocument], name: str
) -> None:
    doc = parsed[name]
    n_pages, title = GOOD_PAPERS[name]
    assert detect_format(PAPERS / name) == "pdf"
    assert doc.format == "pdf"
    assert doc.title == title
    assert [page.number for page in doc.pages] == list(range(1, n_pages + 1))
    assert all(page.text.strip() for page in doc.pages)
    for page in doc.pages:
        assert "\ufffe" not in page.text and "\r" not in page.text
        assert "  " not in page.text and "\n\n\n" not in page.text
        assert page.text == page.text.strip()


def test_all_papers_parse_quickly() -> None:
    start = time.perf_counter()
    for name in GOOD_PAPERS:
        parse_file(PAPERS / name, **LIMITS)
    assert time.perf_counter() - start < 20  # about 1.5 s on 2 cores


@pytest.mark.parametrize(("name", "page", "sentence"), COLUMN_PASSAGES)
def test_two_column_pages_read_in_column_order(
    parsed: dict[str, ParsedDocument], name: str, page: int, sentence: str
) -> None:
    assert sentence in flat(parsed[name].pages[page - 1].text)


def test_line_end_hyphens_are_joined(parsed: dict[str, ParsedDocument]) -> None:
    s2orc = flat(parsed["2020.acl-main.447.pdf"].pages[0].text)
    assert "The corpus consists of rich metadata" in s2orc  # "cor-" / "pus"
    assert "exhibit many interesting characteristics" in s2orc  # "interest-" / "ing"
    assert "linked to their corresponding paper objects" in s2orc
    assert "Citation graphs like AMiner" in s2orc
    assert "bibliometrics, science-of-science" in s2orc
    # A real compound broken at the line end keeps its hyphen.
    assert "English-language academic papers" in s2orc
    test1 = flat(parsed["test1.pdf"].pages[1].text)
    assert "non-trauma patients with permanent retrievable filters" in test1


def test_running_headers_and_page_numbers_are_removed(parsed: dict[str, ParsedDocument]) -> None:
    for page in parsed["test1.pdf"].pages:
        assert "Datta et al. Journal of Trauma Management & Outcomes" not in page.text
        assert not re.search(r"Page \d+ of 11", page.text)
    for page in parsed["test2.pdf"].pages[1:]:
        assert "Rehabilitation Research and Practice" not in page.text
    for page in parsed["example2.pdf"].pages:
        assert "BMC Health Services Research 2014, 14:1" not in page.text
    for page in parsed["test6.pdf"].pages[1:]:
        assert "PeerJ Comput. Sci., DOI 10.7717/peerj-cs.118" not in page.text
    for page in parsed["example3.pdf"].pages[1:]:
        assert "The author(s) has paid for this article" not in page.text
    # ACL proceedings print the page number (4969...) first in the text stream.
    for page in parsed["2020.acl-main.447.pdf"].pages:
        assert not re.match(rf"{4968 + page.number}\b", page.text)
    for page in parsed["paper.pdf"].pages:
        assert page.text.splitlines()[-1] != str(page.number)


def test_body_text_survives_the_clean_up(parsed: dict[str, ParsedDocument]) -> None:
    test2 = flat(parsed["test2.pdf"].pages[1].text)
    assert test2.startswith("Structured cardiac rehabilitation plays an essential role")
    total_words = sum(len(p.text.split()) for d in parsed.values() for p in d.pages)
    assert total_words > 100_000


# --- edge cases -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "password", "phrase"),
    [("aes-128.pdf", "baz", "Secret!"), ("2206.01062_pg3.pdf", "1234", "DocLayNet")],
)
def test_encrypted_pdfs(name: str, password: str, phrase: str) -> None:
    with pytest.raises(EncryptedPdfError) as missing:
        parse_file(EDGE / name, **LIMITS)
    assert missing.value.reason == "encrypted: password required"
    with pytest.raises(EncryptedPdfError) as wrong:
        parse_file(EDGE / name, passwords=["not-it"], **LIMITS)
    assert wrong.value.reason == "encrypted: wrong password"
    doc = parse_file(EDGE / name, passwords=["not-it", password], **LIMITS)
    assert [page.number for page in doc.pages] == [1]
    assert phrase in doc.pages[0].text


def test_encrypted_pdf_title_comes_from_its_metadata() -> None:
    doc = parse_file(EDGE / "2206.01062_pg3.pdf", passwords=["1234"], **LIMITS)
    assert doc.title == "DocLayNet: A Large Human-Annotated Dataset for Document-Layout Analysis"


def test_scanned_pdf_has_no_text() -> None:
    with pytest.raises(NoTextError) as caught:
        parse_file(EDGE / "ocr_test.pdf", **LIMITS)
    assert caught.value.reason == "no extractable text (scanned?)"


def test_corrupted_zen_of_python_is_recovered() -> None:
    doc = parse_file_with_timeout(EDGE / "zen_of_python_corrupted.pdf", timeout_s=30, **LIMITS)
    text = doc.pages[0].text
    assert "Beautiful is better than ugly." in text
    assert "Explicit is better than implicit." in text
    assert "Namespaces are one honking great idea" in text
    # One line of the poem per line of text, not run together.
    assert "Explicit is better than implicit.\nSimple is better than complex." in text
    assert doc.title == "zen_of_python_corrupted"  # metadata says "zen_of_python.txt"


def test_evil_xobjects_is_recovered_or_malformed_and_never_hangs() -> None:
    start = time.monotonic()
    try:
        doc = parse_file_with_timeout(EDGE / "issue-1113-evil-xobjects.pdf", timeout_s=30, **LIMITS)
    except MalformedPdfError as error:
        assert error.reason.startswith("malformed PDF: ")
    else:
        assert "Hello world" in doc.pages[0].text
    assert time.monotonic() - start < 30


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("aes-128.pdf", EncryptedPdfError),
        ("ocr_test.pdf", NoTextError),
    ],
)
def test_edge_case_errors_cross_the_process_boundary(name: str, error: type[Exception]) -> None:
    with pytest.raises(error) as in_child:
        parse_file_with_timeout(EDGE / name, timeout_s=30, **LIMITS)
    with pytest.raises(error) as direct:
        parse_file(EDGE / name, **LIMITS)
    assert str(in_child.value) == str(direct.value)
