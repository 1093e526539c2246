"""A cited passage found on its PDF page and drawn over it (shared/parsing/render.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from shared.errors import NotFoundError
from shared.parsing.render import HIGHLIGHT_RGBA, locate_passage, render_page_png
from tests.support.service import SHARED_DATA

PASA = SHARED_DATA / "papers" / "pasa.pdf"


def _span(chars: str, passage: str) -> str | None:
    found = locate_passage(chars, passage)
    return chars[found[0] : found[1] + 1] if found else None


def test_a_passage_is_found_across_line_breaks_and_hyphenation() -> None:
    page = (
        "Title of the paper\r\n"
        "Some unrelated words of the introduction. The Crawler pro-\r\n"
        "cesses the user query and can ac\ufffecess papers from the\r\n"
        "paper queue. Then other text follows."
    )
    passage = "The Crawler processes the user query and can access papers from the paper queue."
    assert _span(page, passage) == (
        "The Crawler pro-\r\ncesses the user query and can ac\ufffecess papers from the\r\npaper queue"
    )


def test_ligatures_and_case_do_not_hide_a_passage() -> None:
    page = "We study e\ufb03cient retrieval for scienti\ufb01c QA."
    assert _span(page, "efficient Retrieval for scientific QA") == (
        "e\ufb03cient retrieval for scienti\ufb01c QA"
    )


def test_a_stray_common_phrase_does_not_stretch_the_span() -> None:
    filler = " ".join(f"w{i}" for i in range(60))
    page = f"of the model {filler} the agent reads each paper of the queue carefully"
    assert _span(page, "the agent reads each paper of the queue") == (
        "the agent reads each paper of the queue"
    )


def test_a_passage_that_is_not_on_the_page_is_not_found() -> None:
    assert (
        locate_passage("An entirely different page about chemistry.", "PaSa crawler selector queue")
        is None
    )
    assert locate_passage("anything", "") is None


@pytest.fixture
def pasa() -> Path:
    if not PASA.exists():
        pytest.skip(f"paper PDFs not found under {SHARED_DATA} (clone ../shared beside the repo)")
    return PASA


def test_a_page_is_rendered_with_the_passage_highlighted(pasa: Path) -> None:
    from PIL import Image

    passage = (
        "It contains 50 real-world academic queries with annotated relevant papers, to assess "
        "PaSa in real-world scenarios."
    )
    rendered = render_page_png(pasa, page=2, passage=passage, scale=1.0)
    assert rendered.page_count == 15
    assert rendered.highlight_rects >= 2
    image = Image.open(io.BytesIO(rendered.png)).convert("RGB")
    assert image.size == (rendered.width, rendered.height) == (596, 842)
    alpha = HIGHLIGHT_RGBA[3] / 255
    on_white = tuple(round(255 * (1 - alpha) + c * alpha) for c in HIGHLIGHT_RGBA[:3])
    tinted = sum(1 for px in image.getdata() if all(abs(a - b) <= 3 for a, b in zip(px, on_white)))
    assert tinted > 1000

    plain = render_page_png(pasa, page=2, passage="words that appear nowhere zyxw qvjk", scale=1.0)
    assert plain.highlight_rects == 0


def test_a_page_beyond_the_document_is_not_found(pasa: Path) -> None:
    with pytest.raises(NotFoundError, match=r"page 16: pasa.pdf has 15 page\(s\), numbered from 1"):
        render_page_png(pasa, page=16)
