"""The MLflow UI as a user opens it, in Chromium: runs view, a run's plots, the model card."""

from __future__ import annotations

import re

import pytest
from browser import close_assistant
from playwright.sync_api import expect
from ui_pages import experiment_id, first_plot, loaded_image, run_url, runs_view_url, version_url

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def test_runs_view_shows_test_metric_columns_and_marks_the_champion(page, stack, registry):
    client, champion = registry
    page.goto(runs_view_url(client, stack))
    expect(page.get_by_text("matching runs")).to_be_visible()
    close_assistant(page)  # else the table, a quarter narrower, may leave columns out
    expect(page.get_by_role("columnheader", name=re.compile(r"test\/")).first).to_be_visible()
    expect(page.get_by_role("columnheader", name=re.compile("champion", re.I)).first).to_be_visible()
    expect(page.get_by_text(f"version {champion.version}", exact=True).first).to_be_visible()


def test_run_page_renders_a_logged_plot(page, stack, registry):
    client, champion = registry
    plot = first_plot(client, champion.run_id)
    page.goto(run_url(stack, experiment_id(client, stack), champion.run_id, f"artifacts/{plot}"))
    name = plot.rsplit("/", 1)[-1]
    expect(page.get_by_text(name).first).to_be_visible()  # the file, selected in the artifact tree
    assert loaded_image(page, page.get_by_alt_text(name).first) > 100


def test_registered_version_page_shows_the_model_card(page, stack, registry):
    _, champion = registry
    page.goto(version_url(stack, champion.version))
    expect(page.get_by_text(f"{stack.model_name} version {champion.version}").first).to_be_visible()
    expect(page.get_by_text("Intended use").first).to_be_visible()
    alias = page.get_by_text(re.compile(r"^@?\s*champion$"))  # the alias chip, not the card's own words
    expect(alias.first).to_be_visible()
