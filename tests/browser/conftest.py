"""Fixtures of the browser tests: Debian's Chromium, and real MLflow and Prefect servers holding one
real smoke pipeline run (trained on the session's synthetic SST-style data).

Without ``/usr/bin/chromium`` or Playwright the tests are skipped with the reason, except when
``SEQOPS_REQUIRE_BROWSER=1`` (CI), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser import REQUIRE_BROWSER, chromium, missing_browser, new_page
from ui_servers import UiStack, ui_stack


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "browser: opens the real UIs in Chromium (tests/browser)")


@pytest.fixture(scope="session")
def browser_ready() -> None:
    """Skip (or in CI fail) when the browser cannot run here."""
    reason = missing_browser()
    if reason:
        if os.environ.get(REQUIRE_BROWSER) == "1":
            pytest.fail(f"{reason}, and {REQUIRE_BROWSER}=1 says the browser tests must run")
        pytest.skip(reason)


@pytest.fixture
def browser(browser_ready):
    """A headless Chromium per test: Playwright's sync API keeps an asyncio loop running while it is
    open, which would turn the Prefect calls of any test run meanwhile into coroutines."""
    with chromium() as running:
        yield running


@pytest.fixture(scope="session")
def stack(
    browser_ready, synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[UiStack]:
    """MLflow and Prefect servers on free loopback ports, holding the smoke pipeline's run."""
    with ui_stack(tmp_path_factory.mktemp("ui"), synthetic_data_dir) as running:
        yield running


@pytest.fixture
def page(browser):
    """A fresh page (own context: no local storage shared between tests), closed after the test."""
    opened = new_page(browser)
    yield opened
    opened.context.close()


@pytest.fixture(scope="session")
def registry(stack: UiStack):
    """An MLflow client of the UI's own server, and the champion's registered version."""
    from mlflow import MlflowClient

    client = MlflowClient(stack.mlflow_url)
    return client, client.get_model_version_by_alias(stack.model_name, "champion")


@pytest.fixture(scope="session", autouse=True)
def patient_expectations(browser_ready) -> None:
    """Pages fetch their data after loading: give ``expect`` the page timeout, not 5 s."""
    from playwright.sync_api import expect

    expect.set_options(timeout=float(os.environ.get("SEQOPS_BROWSER_TIMEOUT_MS", "30000")))
