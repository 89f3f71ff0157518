"""Regenerate the screenshots of docs/ui.md from a real smoke pipeline run.

Usage: ``.venv/bin/python tests/browser/screenshots.py [--out docs/screenshots] [--keep]``.
Starts MLflow and Prefect servers on free loopback ports in a temporary folder, runs the smoke pipeline
into them (on ``../shared/data`` when present, else synthetic SST-style data), opens each page in
Debian's Chromium as a user would, waits for what the page must show, and saves a 1400x900 PNG
(quantised to 256 colours to keep the docs small).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from browser import chromium, close_assistant, missing_browser, new_page  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402
from ui_pages import (  # noqa: E402
    experiment_id,
    first_plot,
    flow_run_url,
    loaded_image,
    run_url,
    runs_view_url,
    train_flow_run,
    version_url,
)
from ui_servers import CELLS, REPO, UiStack, ui_stack  # noqa: E402

SHARED_DATA = REPO.parent / "shared" / "data"


def data_dir(root: Path) -> Path:
    """The real data beside the checkout when present (nicer numbers), else a synthetic SST-style set."""
    if (SHARED_DATA / "sst2").is_dir():
        return SHARED_DATA
    from sst_data import write_sst  # the suite's own synthetic data

    (root / "data" / "sst2").mkdir(parents=True)
    for name, rows, seed in (("train", 600, 1), ("dev", 120, 2), ("test", 120, 3)):
        write_sst(root / "data" / "sst2" / f"stsa.binary.{name}", rows, seed)
    return root / "data"


def report_file(stack: UiStack) -> Path | None:
    """The pipeline's HTML report, or one written by ``seqops report`` now; None if neither exists."""
    written = sorted(stack.work_dir.glob("**/report*.html"))
    if written:
        return written[0]
    output = stack.work_dir / "report.html"
    env = {**os.environ, "MLFLOW_TRACKING_URI": stack.tracking_uri}
    command = [sys.executable, "-m", "flows.cli", "report", "-o", str(output)]
    done = subprocess.run(command, env=env, cwd=stack.work_dir, capture_output=True, text=True, check=False)
    return output if done.returncode == 0 and output.is_file() else None


def save(page: Page, path: Path) -> None:
    """A viewport screenshot, quantised to 256 colours (UI pages lose nothing visible)."""
    from PIL import Image

    page.screenshot(path=str(path))
    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def pages(stack: UiStack) -> list[tuple[str, str, Callable[[Page], None]]]:
    """``(file name, URL, wait until the page shows what it is for)`` for every screenshot."""
    from mlflow import MlflowClient

    client = MlflowClient(stack.mlflow_url)
    champion = client.get_model_version_by_alias(stack.model_name, "champion")
    experiment = experiment_id(client, stack)
    plot = first_plot(client, champion.run_id)
    flow_run, flow_run_name = train_flow_run(stack, CELLS[0])

    def shows(text: str, mlflow: bool = True) -> Callable[[Page], None]:
        def ready(page: Page) -> None:
            expect(page.get_by_text(text).first).to_be_visible()
            if mlflow:
                close_assistant(page)

        return ready

    def charts_ready(page: Page) -> None:
        shows("Learning curves")(page)  # the saved view's section: training and validation loss together
        expect(page.locator(".js-plotly-plot").first).to_be_visible()

    def flow_run_ready(page: Page) -> None:
        trained = f"{stack.task}/{CELLS[0]}: train"
        shows(flow_run_name, mlflow=False)(page)
        page.get_by_role("tablist").get_by_text("Task Runs", exact=True).click()
        expect(page.get_by_role("link", name=trained, exact=True)).to_be_visible()

    def plot_ready(page: Page) -> None:
        shows(plot.rsplit("/", 1)[-1])(page)
        loaded_image(page, page.get_by_alt_text(plot.rsplit("/", 1)[-1]).first)

    shots = [
        ("mlflow-runs.png", runs_view_url(client, stack), shows("matching runs")),
        ("mlflow-run-charts.png", runs_view_url(client, stack) + "&compareRunsMode=CHART", charts_ready),
        ("mlflow-run-plot.png", run_url(stack, experiment, champion.run_id, f"artifacts/{plot}"), plot_ready),
        ("mlflow-model-card.png", version_url(stack, champion.version), shows("Intended use")),
        ("prefect-flow-run.png", flow_run_url(stack, flow_run), flow_run_ready),
    ]
    report = report_file(stack)
    if report:
        shots.append(("report.png", report.as_uri(), shows(stack.task, mlflow=False)))
    return shots


def main() -> None:
    """Run the servers and the pipeline, then take every screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "screenshots")
    parser.add_argument("--keep", action="store_true", help="keep the servers' logs and stores")
    args = parser.parse_args()
    reason = missing_browser()
    if reason:
        sys.exit(f"cannot take screenshots: {reason}")
    args.out.mkdir(parents=True, exist_ok=True)
    expect.set_options(timeout=60_000)  # pages fetch their data after loading
    root = Path(tempfile.mkdtemp(prefix="seqops-ui-"))
    try:
        with ui_stack(root / "stack", data_dir(root)) as stack, chromium() as browser:
            for name, url, ready in pages(stack):
                page = new_page(browser)
                page.goto(url)
                ready(page)
                save(page, args.out / name)
                page.context.close()
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
