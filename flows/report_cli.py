"""``seqops report``: the bake-off report of the latest pipeline runs, as one self-contained HTML page."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from flows.console import console, guarded


@guarded
def report_command(
    task: Annotated[
        str | None, typer.Option("--task", "-t", help="Only this task (default: every task with a run).")
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "report.html"
    ),
) -> None:
    """Write one HTML page comparing each task's cells and baselines, its champion history and plots."""
    from flows.report import check_output, write_report
    from serving.report import use_tracking_uri  # flows.tracking's, without importing torch

    check_output(output)  # before MLflow is read
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a bar per plot buries the line
    use_tracking_uri()
    written = write_report(output, task)
    console.print(f"report written: {written} (one file: open it in a browser, offline)")
