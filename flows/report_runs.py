"""The MLflow reads of the bake-off report that ``flows.tracker`` has no method for, each retried.

They go through ``flows.retries.with_retries`` like the tracker's: an experiment by name, and the
download of a run's PNGs. Also the report's output, written beside its path and renamed into place.
"""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from flows.report_model import Plot
from flows.retries import with_retries
from flows.tracker import tracker

if TYPE_CHECKING:
    from mlflow.entities import Run

MAX_PLOT_BYTES = 5_000_000  # a bigger PNG is named, not embedded: the page must stay openable


def read_experiment(name: str) -> str | None:
    """The id of the experiment ``name``, or ``None`` when there is none."""
    from mlflow.tracking import MlflowClient

    found = with_retries(lambda: MlflowClient().get_experiment_by_name(name), f"read experiment {name}")
    return found.experiment_id if found is not None else None


def latest_pipeline_run(experiment_id: str) -> Run | None:
    """The latest top-level run with a ``promotion`` tag (a pipeline run, not a study or a cell)."""
    runs = tracker.search_runs([experiment_id], "tags.promotion LIKE '%'")
    top = [run for run in runs if "mlflow.parentRunId" not in run.data.tags]
    return max(top, key=lambda run: run.info.start_time or 0, default=None)


def png_paths(run: Run, folder: str | None = None, depth: int = 1) -> list[str]:
    """The PNG artifacts of ``run`` (at its top level and ``depth`` folders down), sorted."""
    from mlflow.tracking import MlflowClient

    run_id = run.info.run_id
    listed = with_retries(
        lambda: MlflowClient().list_artifacts(run_id, folder), f"list {folder or 'artifacts'} of run {run_id}"
    )
    found = []
    for info in listed:
        if info.is_dir and depth > 0:
            found += png_paths(run, info.path, depth - 1)
        elif info.path.lower().endswith(".png"):
            found.append(info.path)
    return sorted(found)


def fetch_plots(run: Run, downloads: Path | None) -> list[Plot]:
    """Download the PNGs of ``run`` into ``downloads`` and read each as a data URI."""
    import mlflow

    plots = []
    for path in png_paths(run):
        folder = tempfile.mkdtemp(dir=downloads)
        local = with_retries(
            lambda path=path, folder=folder: mlflow.artifacts.download_artifacts(
                run_id=run.info.run_id, artifact_path=path, dst_path=folder
            ),
            f"download {path} of run {run.info.run_id}",
        )
        data = Path(local).read_bytes()
        encoded = base64.b64encode(data).decode("ascii") if len(data) <= MAX_PLOT_BYTES else ""
        plots.append(Plot(path, f"data:image/png;base64,{encoded}" if encoded else ""))
    return plots


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` to a fresh file beside ``path``, then rename it to ``path`` (never half a page)."""
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=".tmp", dir=path.absolute().parent
    )
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
