"""Debian's Chromium driven by Playwright from PyPI: the one browser these tests use.

Playwright's own browser download is never used (it cannot be fetched here); ``executable_path`` points
at ``/usr/bin/chromium`` (Debian package ``chromium``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = "SEQOPS_REQUIRE_BROWSER"  # .ci/run sets it: in CI a missing browser is a failure
VIEWPORT = {"width": 1400, "height": 900}
# Headless, and nothing that reaches for Google's hosts (the machine's network is closed).
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.is_file():
        return f"{CHROMIUM} not found: install Debian's chromium (apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright not installed: pip install -e '.[ui]'"
    return None


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; Playwright gives each launch a fresh, private profile folder and removes it."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def new_page(browser: Browser) -> Page:
    """A page in a fresh context (no local storage from another test) with the docs' viewport."""
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(float(os.environ.get("SEQOPS_BROWSER_TIMEOUT_MS", "30000")))
    return context.new_page()


def close_assistant(page: Page) -> None:
    """Close MLflow's "MLflow Assistant (Beta)" side panel, which opens on every page and takes a quarter
    of the width (the runs table then hides columns)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    question = page.get_by_role("textbox", name="Ask a question...")
    try:
        question.wait_for(timeout=10_000)  # the panel renders with the page's frame, before its data
    except PlaywrightTimeout:
        return  # no assistant on this page
    panel = page.locator("div").filter(has=page.get_by_role("button", name="New Chat")).filter(has=question)
    panel.last.get_by_role("button", name="Close", exact=True).click()
    question.wait_for(state="hidden")
