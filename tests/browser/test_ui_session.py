"""One user's session in a real browser, in order: upload papers and watch the job to its end,
search, ask (and ask again: an answer-cache hit), follow up and save the conversation, open a
cited page, cancel and retry jobs, purge a cache tier through its confirmation.

The tests share one page (one Streamlit session), as a user would; each waits on what the
page shows, never on a fixed delay. Screenshots land in tests/browser/artifacts/test_ui_session/.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.service import LiveService

pytestmark = pytest.mark.integration

CORPUS = "ui-papers"
QUESTION = "How does PaSa search for papers?"
FOLLOW_UP = "What does its Selector do?"
LONG_WAIT_MS = 600_000  # ingestion of two papers on a busy 2-core machine
ANSWER_WAIT_MS = 180_000
# The highlight colour blended over white paper (see shared/parsing/render.py).
HIGHLIGHT_ON_WHITE = (255, 240, 159)


@pytest.fixture(scope="module")
def page(browser: Any, ui_url: str, artifacts: Path) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(30_000)
    tab = context.new_page()
    tab.goto(ui_url)
    yield tab
    context.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def shot(page: Any, artifacts: Path, name: str) -> None:
    page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)


def go_to(page: Any, name: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name, level=1)).to_be_visible()


def choose(page: Any, container: Any, label: str, option: str) -> None:
    container.get_by_test_id("stSelectbox").filter(has_text=label).click()
    page.get_by_role("option", name=option, exact=True).click()


def job_panel(page: Any) -> Any:
    return page.locator(".st-key-job_panel")


def table_rows(table: Any) -> list[list[str]]:
    return [row.locator("td").all_inner_texts() for row in table.locator("tbody tr").all()]


def chat_api_exists(api: httpx.Client) -> bool:
    resp = api.post("/chat", json={"message": "", "corpus": CORPUS})
    return not (
        resp.status_code in (404, 405)
        and resp.json().get("detail") in ("Not Found", "Method Not Allowed")
    )


def test_upload_two_papers_and_watch_the_job_to_its_end(
    page: Any, papers: Path, artifacts: Path
) -> None:
    expect(page.get_by_role("heading", name="Corpus", level=1)).to_be_visible()
    form = page.get_by_test_id("stForm").filter(has_text="Upload and ingest")
    form.locator("input[type=file]").set_input_files(
        [papers / "pasa.pdf", papers / "paper.pdf", papers / "edge_cases" / "ocr_test.pdf"]
    )
    expect(form.get_by_text("ocr_test.pdf")).to_be_visible()
    form.get_by_label("Corpus", exact=True).fill(CORPUS)
    form.get_by_role("button", name="Upload and ingest").click()

    panel = job_panel(page)
    expect(panel).to_be_visible()
    # Record every "n/3 files" figure the live panel shows, to see it move while we wait.
    page.evaluate(
        """() => {
            window.__files = [];
            const look = () => {
                const panel = document.querySelector('.st-key-job_panel');
                const m = panel && panel.innerText.match(/(\\d+)\\/3 files/);
                if (m && window.__files[window.__files.length - 1] !== m[0]) window.__files.push(m[0]);
            };
            look();
            new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )
    shot(page, artifacts, "01-corpus-job-running")
    badge = panel.get_by_text("succeeded, 1 failed", exact=True)
    expect(badge).to_be_visible(timeout=LONG_WAIT_MS)
    seen = page.evaluate("window.__files")
    assert seen[-1] == "3/3 files", seen
    assert len(seen) >= 2, f"the panel never showed progress before the end: {seen}"

    # Honest status: a job with a failed file is not shown green.
    red, green, _ = map(
        int, re.findall(r"\d+", badge.evaluate("e => getComputedStyle(e).color"))[:3]
    )
    assert red > green, "a job with a failed file must not read green"
    expect(panel.get_by_text("upload/ocr_test.pdf: no extractable text (scanned?)")).to_be_visible()
    outcomes = {row[0]: row[1] for row in table_rows(panel.get_by_test_id("stTableStyledTable"))}
    assert outcomes == {
        "upload/ocr_test.pdf": "failed",
        "upload/paper.pdf": "indexed",
        "upload/pasa.pdf": "indexed",
    }, outcomes
    expect(
        panel.get_by_text(re.compile(r"3/3 files · 1 failed · (\d+)/\1 chunks indexed"))
    ).to_be_visible()

    main = page.get_by_test_id("stMain")
    jobs_table = main.get_by_test_id("stTableStyledTable").filter(has_text="created")
    expect(jobs_table.get_by_text("succeeded, 1 failed")).to_be_visible()
    corpora = main.get_by_test_id("stTableStyledTable").filter(has_text="documents")
    row = corpora.locator("tbody tr").filter(has_text=CORPUS)
    expect(row).to_have_count(1)  # the table is redrawn once the job has ended
    assert row.locator("td").all_inner_texts()[:2] == [CORPUS, "2"]
    shot(page, artifacts, "02-corpus-job-finished")


def test_search_page_lists_paper_page_and_score(page: Any, artifacts: Path) -> None:
    go_to(page, "Search")
    page.get_by_label("Query").fill(QUESTION)
    page.get_by_test_id("stRadio").get_by_text("bm25", exact=True).click()
    page.get_by_role("button", name="Search", exact=True).click()
    first = page.locator(".st-key-search_hit_1")
    expect(first).to_contain_text("PaSa")
    expect(first).to_contain_text(re.compile(r"page \d+ · score \d+\.\d{4}"))
    expect(page.get_by_test_id("stMain")).to_contain_text(
        f"results for {QUESTION} in {CORPUS} (bm25)"
    )
    shot(page, artifacts, "03-search")


def _ask(page: Any, question: str, turn: int) -> Any:
    page.get_by_test_id("stChatInputTextArea").fill(question)
    page.keyboard.press("Enter")
    block = page.locator(f".st-key-turn_{turn}")
    expect(block).to_be_visible(timeout=ANSWER_WAIT_MS)
    return block


def _badges(block: Any) -> list[str]:
    return [t.strip() for t in block.locator(".stMarkdownBadge").all_inner_texts()]


def test_ask_then_ask_again_shows_an_answer_cache_hit(page: Any, artifacts: Path) -> None:
    go_to(page, "Ask")
    choose(page, page.get_by_test_id("stSidebar"), "Corpus", CORPUS)
    first = _ask(page, QUESTION, 0)
    assert "answer cache hit" not in _badges(first)
    citations = first.locator("[class*='st-key-citation_0_']")
    expect(citations.first).to_contain_text(re.compile(r"\[\d+\] .+, page \d+"))
    shot(page, artifacts, "04-ask-first")

    # The same question as the first turn of a new conversation: served by the answer cache.
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".st-key-turn_0")).to_have_count(0)
    again = _ask(page, QUESTION, 0)
    badges = _badges(again)
    assert "answer cache hit" in badges, badges
    shot(page, artifacts, "05-ask-answer-hit")


def test_cited_page_opens_as_an_image_with_the_passage_highlighted(
    page: Any, artifacts: Path
) -> None:
    block = page.locator(".st-key-turn_0")
    block.get_by_role("button", name=re.compile(r"Open page \d+")).first.click()
    dialog = page.get_by_role("dialog")
    image = dialog.locator("img")
    expect(image).to_be_visible(timeout=60_000)
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=image.element_handle(), timeout=30_000
    )
    highlighted = image.evaluate(
        """(img, target) => {
            const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4)
                if (Math.abs(d[i] - target[0]) < 8 && Math.abs(d[i + 1] - target[1]) < 8 && Math.abs(d[i + 2] - target[2]) < 12) n++;
            return n;
        }""",
        list(HIGHLIGHT_ON_WHITE),
    )
    assert highlighted > 2000, f"only {highlighted} highlighted pixels on the cited page"
    shot(page, artifacts, "06-cited-page")
    page.keyboard.press("Escape")
    expect(dialog).to_have_count(0)


def test_a_follow_up_joins_the_history_with_its_cache_info(page: Any, artifacts: Path) -> None:
    follow = _ask(page, FOLLOW_UP, 1)
    expect(follow.locator(".stMarkdownBadge").first).to_be_visible()
    page.get_by_test_id("stExpander").filter(has_text="History").locator("summary").click()
    history = page.get_by_test_id("stTableStyledTable").filter(has_text="embedding hits")
    expect(history.locator("tbody tr")).to_have_count(2)  # the expander renders it after the click
    rows = table_rows(history)
    assert [row[1] for row in rows] == [QUESTION, FOLLOW_UP], rows
    assert "answer cache hit" in rows[0][2], rows  # turn 1 of this conversation was the repeat
    shot(page, artifacts, "07-follow-up")


def test_save_conversation_downloads_the_sessions_jsonl(
    page: Any, api: httpx.Client, artifacts: Path
) -> None:
    assert chat_api_exists(api), "POST /chat is missing"
    save = page.get_by_test_id("stDownloadButton").get_by_role("button", name="Save conversation")
    expect(save).to_be_enabled()
    with page.expect_download() as info:
        save.click()
    download = info.value
    target = artifacts / download.suggested_filename
    download.save_as(target)
    lines = [json.loads(line) for line in target.read_text().splitlines() if line.strip()]
    assert len(lines) == 1 + 4, lines  # the header, then two questions and two answers
    header, *messages = lines
    assert header.get("session_id"), header
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert [messages[0]["content"], messages[2]["content"]] == [QUESTION, FOLLOW_UP]
    assert all(m["content"].strip() for m in messages)


def test_cancel_a_running_job_then_retry_it(
    page: Any, stack: LiveService, api: httpx.Client, papers: Path, artifacts: Path
) -> None:
    folder = Path(stack.env["RAG_CORPUS_ROOT"]) / "batch"
    folder.mkdir(exist_ok=True)
    for name in ("paper.pdf", "2203.00130v1.pdf", "test6.pdf"):
        shutil.copy(papers / name, folder / name)
    go_to(page, "Corpus")
    page.get_by_role("tab", name="Server path").click()
    form = page.get_by_test_id("stForm").filter(has_text="Start ingestion")
    form.get_by_label("Folder or file on the server (inside RAG_CORPUS_ROOT)").fill("batch")
    form.get_by_label("Corpus", exact=True).fill("ui-cancel")
    form.get_by_role("button", name="Start ingestion").click()
    panel = job_panel(page)
    expect(panel).to_contain_text("corpus ui-cancel")
    panel.get_by_role("button", name="Cancel job").click()
    expect(panel.get_by_text("cancelled", exact=True)).to_be_visible()
    figures = panel.get_by_test_id("stProgress").inner_text()
    shot(page, artifacts, "08-job-cancelled")

    # The panel stops polling at the end: once the worker has drained what it had in hand,
    # the figures shown are still those of the moment it was cancelled.
    deadline = time.monotonic() + 300
    while any(api.get("/health").json().get("queues", {"pending": 1}).values()):
        assert time.monotonic() < deadline, "the worker never drained the cancelled job's tasks"
        page.wait_for_timeout(500)  # polling the queues, with a deadline
    assert panel.get_by_test_id("stProgress").inner_text() == figures

    panel.get_by_role("button", name="Retry what failed").click()
    expect(panel).not_to_contain_text("cancelled", timeout=30_000)
    expect(panel.get_by_text(re.compile(r"^succeeded"))).to_be_visible(timeout=LONG_WAIT_MS)
    expect(panel).to_contain_text("3/3 files · 0 failed")
    shot(page, artifacts, "09-job-retried")


def test_purge_a_tier_through_the_confirmation(
    page: Any, api: httpx.Client, artifacts: Path
) -> None:
    sidebar = page.get_by_test_id("stSidebar")
    go_to(page, "Ask")  # a full rerun: the sidebar shows the figures of now
    answers_row = (
        sidebar.get_by_test_id("stTableStyledTable").locator("tbody tr").filter(has_text="answers")
    )
    keys_before = int(answers_row.locator("td").nth(1).inner_text())
    assert keys_before >= 1, "the questions above left answers in the cache"
    choose(page, sidebar, "Tier to purge", "answers")
    sidebar.get_by_role("button", name="Purge…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Delete {keys_before} key")
    shot(page, artifacts, "10-purge-confirmation")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_have_count(0)
    assert api.get("/cache/stats").json()["tiers"]["answers"]["keys"] == keys_before

    sidebar.get_by_role("button", name="Purge…").click()
    page.get_by_role("dialog").get_by_role("button", name="Purge answers").click()
    expect(
        sidebar.get_by_text(re.compile(rf"Purged {keys_before} keys? from the answers tier"))
    ).to_be_visible()
    expect(answers_row.locator("td").nth(1)).to_have_text("0")
    assert api.get("/cache/stats").json()["tiers"]["answers"]["keys"] == 0
    shot(page, artifacts, "11-purged")
