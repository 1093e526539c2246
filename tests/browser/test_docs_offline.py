"""/docs renders in a browser that can reach nothing but the API: no CDN needed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.service import LiveService

pytestmark = pytest.mark.integration


@pytest.fixture
def offline_page(browser: Any, stack: LiveService) -> Iterator[tuple[Any, list[str]]]:
    """A page whose every request to anywhere but the API is refused (and recorded)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    refused: list[str] = []

    def only_the_api(route: Any) -> None:
        if route.request.url.startswith(stack.url):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_api)
    yield context.new_page(), refused
    context.close()


def test_swagger_ui_renders_every_route_offline(
    offline_page: tuple[Any, list[str]], stack: LiveService, artifacts: Path
) -> None:
    from playwright.sync_api import expect

    page, refused = offline_page
    page.goto(f"{stack.url}/")  # the API's front door leads to its documentation
    assert page.url == f"{stack.url}/docs"
    operations = page.locator(".opblock")
    expect(operations.first).to_be_visible(timeout=30_000)
    expect(
        page.locator(".opblock-summary-path", has_text="/documents/{doc_id}/pages/{page}.png")
    ).to_be_visible()
    expect(page.locator(".opblock-summary-path", has_text="/ingest/upload")).to_be_visible()
    assert operations.count() >= 12
    page.screenshot(path=str(artifacts / "docs.png"), full_page=True)
    assert refused == []
