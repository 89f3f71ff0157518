"""The bake-off report the pipeline logged, as a user opens it in Chromium: its tables, the champion,
the baseline and the plots."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from ui_pages import loaded_image
from ui_servers import CELLS

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_the_report_shows_cells_beside_the_baseline_the_champion_and_plots(page, stack, registry):
    client, champion = registry
    parent = client.get_run(champion.run_id).data.tags["mlflow.parentRunId"]
    downloaded = client.download_artifacts(parent, "report.html", str(stack.work_dir))
    page.goto(f"file://{downloaded}")
    expect(page.get_by_role("heading", name=stack.task, exact=True)).to_be_visible()
    table = page.get_by_role("table").first
    expect(table.get_by_role("columnheader", name="macro_f1").first).to_be_visible()
    for model in (*CELLS, "baseline tfidf_logreg"):
        expect(table.get_by_role("row").filter(has_text=model).first).to_be_visible()
    expect(table.get_by_role("row").filter(has_text="champion").first).to_contain_text(champion.tags["cell"])
    expect(page.get_by_role("heading", name="Champion history")).to_be_visible()
    assert loaded_image(page, page.get_by_role("img").first) > 100
