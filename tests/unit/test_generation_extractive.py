"""The extractive answer's sentence filter, on sentences taken from the shared papers.

Every example is text that pypdfium2 extracts from ../shared/data/papers (file and page noted),
split into sentences the way the answerer splits a chunk.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.generation.extractive import answer_sentences, is_answer_sentence, is_reference_list

PAPERS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "papers"

DEBRIS = [
    # pasa.pdf p2: the labels of Figure 1 run into its caption
    (
        "Crawler Paper Queue User Query Selector User Query Select / Drop [Search] [Expand] [Stop] "
        "Figure 1: Architecture of PaSa."
    ),
    "Figure 2: An example of the PaSa workflow.",  # pasa.pdf p3
    "Table 3: Functions of the Crawler.",  # pasa.pdf p4
    "Successful crowd-Figure 1.",  # papermage.pdf p3, a figure inside a figure
    # pasa.pdf p6, a table row
    (
        "Method Precision Recall F1 GPT-4o 0.96 0.69 0.80 Qwen-2.5-7b 1.0 0.38 0.55 "
        "PaSa-7b-Selector 0.95 0.78 0.85"
    ),
    # pasa.pdf p4, an equation
    "Then the advantage function can be approximated by Aˆ(st, at) = Rˆt − Vˆφ(st).",
    # pasa.pdf p3, footnote URLs
    (
        "1 https://iclr.cc/Conferences/2023 2 https://icml.cc/Conferences/2023 "
        "3 https://neurips.cc/Conferences/2023"
    ),
    # pasa.pdf p3, the example paper trees of Figure 2
    (
        "[Expand]3 Empirical approach Research paper meta analysis [Expand]4 Results 4.1 Scaling "
        "Laws for Robot Foundation Models [Stop] Foundation models in robotics"
    ),
    # papermage.pdf p4, code
    (
        'PDF2TextParser () 3 >>> doc = parser . parse ("... pdf") 4 >>> [ token . text for token '
        "in doc . tokens ]"
    ),
    # reference list pieces, pasa.pdf p9-10 and papermage.pdf p9
    "Litllm: A toolkit for scientific literature review. arXiv preprint arXiv:2402.01788.",
    "Marwah Alaofi, Luke Gallagher, Mark Sanderson, Falk Scholer, and Paul Thomas.",
    (
        "In Proceedings of the 46th international ACM SIGIR conference on research and development "
        "in information retrieval, pages 1869– 1873."
    ),
    "Research synthesis methods, 11(2):181–217.",
    "Advances in Neural Information Processing Systems, 36.",
    "[12] A. Author, B. Writer, and C. Person. A study of things. In ACL, 2020.",
]

PROSE = [
    # pasa.pdf p2
    "The system consists of two LLM agents, Crawler and Selector.",
    "The Crawler processes the user query and can access papers from the paper queue.",
    # numbers and model names in prose are fine (pasa.pdf p1-2)
    (
        "Notably, PaSa-7B surpasses the best Google-based baseline, Google with GPT-4o, by 37.78% "
        "in recall@20 and 39.90% in recall@50."
    ),
    (
        "AutoScholarQuery includes 33,511 / 1,000 / 1,000 query-paper pairs in the training / "
        "development / test split."
    ),
    (
        "To construct AutoScholarQuery, we began by collecting all papers published at ICLR 2023, "
        "ICML 2023, NeurIPS 2023, ACL 2024, and CVPR 2024."
    ),
    # a citation and a reference to a table inside prose (papermage.pdf p3, pasa.pdf p6)
    (
        "Recently, many practitioners have also turned to crowdsourcing for creating labeled "
        "datasets at low cost [49]."
    ),
    (
        "As illustrated in Table 6, PaSa-7b exhibits a greater advantage in real-world academic "
        "search scenarios."
    ),
    # a numbered citation starting a sentence is prose, not a reference entry (2203.00130v1.pdf)
    "[22] distinguished two types of health information searching behaviors.",
    # a heading glued to its sentence (2304.02623v1.pdf p2)
    (
        "3 DESIGNING AI SUPPORTS FOR EXPOSITORY WRITING To optimally involve LLMs to help "
        "expository writing, we argue that there are three components."
    ),
]


@pytest.mark.parametrize("sentence", DEBRIS)
def test_debris_is_rejected(sentence: str) -> None:
    assert not is_answer_sentence(sentence)


@pytest.mark.parametrize("sentence", PROSE)
def test_prose_is_kept(sentence: str) -> None:
    assert is_answer_sentence(sentence)


def test_a_chunk_of_references_gives_no_sentence() -> None:
    # pasa.pdf p10: titles alone would pass for prose
    chunk = (
        "Michael Gusenbauer and Neal R Haddaway. 2021. What every researcher should know about "
        "searching– clarified concepts, search advice, and an agenda to improve finding in "
        "academia. Research synthesis methods, 12(2):136–147. Karl Kingsley, Gillian M "
        "Galbraith, Matthew Herring, Eva Stowers, Tanis Stewart, and Karla V Kingsley. 2011. "
        "Why not just google it? an assessment of information literacy skills in a biomedical "
        "science curriculum. BMC medical education, 11:1–8."
    )
    assert answer_sentences(chunk) == []


def test_text_after_a_references_heading_is_dropped() -> None:
    chunk = (
        "These findings underscore PaSa significantly improves the efficiency and accuracy of "
        "academic search. References Shubham Agarwal, Issam H Laradji, Laurent Charlin, and "
        "Christopher Pal. 2024. Litllm: A toolkit for scientific literature review."
    )
    assert answer_sentences(chunk) == [
        (
            "These findings underscore PaSa significantly improves the efficiency and accuracy of "
            "academic search."
        )
    ]


def test_prose_with_citations_is_not_a_reference_list() -> None:
    assert not is_reference_list(PROSE)


def test_pasa_page_2_keeps_its_prose_and_drops_the_figure() -> None:
    pdf = PAPERS / "pasa.pdf"
    if not pdf.exists():
        pytest.skip(f"{pdf} not found (clone ../shared beside the repo)")
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        text = document[1].get_textpage().get_text_range()
    finally:
        document.close()
    kept = answer_sentences(text)
    assert "The system consists of two LLM agents, Crawler and Selector." in kept
    assert not any("Figure 1: Architecture of PaSa" in s for s in kept)
    assert not any("[Search] [Expand] [Stop]" in s for s in kept)
    assert len(kept) >= 10
