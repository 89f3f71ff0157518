"""The Prefect UI as a user opens it, in Chromium: the flow run that trained a cell, with its task runs."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from ui_pages import flow_run_url, train_flow_run
from ui_servers import CELLS

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_flow_run_page_shows_its_name_and_task_runs(page, stack):
    flow_run, name = train_flow_run(stack, CELLS[0])
    page.goto(flow_run_url(stack, flow_run))
    expect(page.get_by_text(name, exact=True).first).to_be_visible()
    expect(page.get_by_text("Completed").first).to_be_visible()
    page.get_by_role("tablist").get_by_text("Task Runs", exact=True).click()
    search = page.get_by_placeholder("Search by run name")
    for cell in CELLS:
        trained = f"{stack.task}/{cell}: train"
        search.fill(trained)  # the list is paged: look the run up as a user would
        expect(page.get_by_role("link", name=trained, exact=True)).to_be_visible()
