"""The bake-off report's facts, read from MLflow: each task's latest pipeline run, its cells and baselines.

``write_report(path)`` renders them as one self-contained HTML page (``flows.report_html``); the
``seqops report`` command (``flows.report_cli``) and the pipeline call it. Names read (docs/report.md):
experiment ``seqops-<task>``; the latest top-level run with a ``promotion`` tag; its child runs
(``test/<metric>``, ``ship/*``, tags ``int8``, ``int8_gate``); its ``baseline/<name>/<metric>``
metrics; the registered versions of ``seqops-<task>`` and their ``champion`` alias.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from flows.report_model import ReportError, Row, TaskReport, Version
from flows.report_runs import fetch_plots, latest_pipeline_run, read_experiment
from flows.tables import SHIPPING_METRICS, summary_metrics
from flows.tracker import tracker
from tasks import get_task, task_names

if TYPE_CHECKING:
    from mlflow.entities import Run


def gather(task: str | None = None, downloads: Path | None = None) -> list[TaskReport]:
    """Read every task's (or one task's) latest pipeline run from the MLflow tracking URI in force.

    Args:
        task: Only this task; ``None``: every registered task that has a pipeline run.
        downloads: A private folder for the downloaded PNGs (``None``: a temporary one).

    Returns:
        One report per task with a pipeline run, in task-name order.

    Raises:
        ReportError: The task is unknown, or no task has a pipeline run yet.
    """
    if task is not None:
        try:
            get_task(task)
        except KeyError as error:
            raise ReportError(str(error.args[0])) from None
    reports = [r for name in ([task] if task else task_names()) if (r := task_report(name, downloads))]
    if not reports:
        which = f"task {task}" if task else "any task"
        raise ReportError(f"no pipeline run of {which} in MLflow yet: run `seqops pipeline` first")
    return reports


def task_report(name: str, downloads: Path | None) -> TaskReport | None:
    """The report of one task, or ``None`` when it has no pipeline run yet."""
    task_ = get_task(name)
    experiment_id = read_experiment(f"seqops-{name}")
    parent = latest_pipeline_run(experiment_id) if experiment_id else None
    if parent is None:
        return None
    parent_id = parent.info.run_id
    children = tracker.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_id}'")
    history = champion_history(f"seqops-{name}", task_.promotion_metric)
    versions = {v.run_id: v.version for v in history}
    rows = [cell_row(run, experiment_id, versions, downloads) for run in sorted(children, key=_started)]
    rows += baseline_rows(parent)
    columns = summary_metrics(task_, sorted({key for row in rows for key in row.scores}))
    lead = f"test_{task_.promotion_metric}"
    columns = [lead] * (lead in columns) + [c for c in columns if c != lead]
    return TaskReport(
        task=name,
        metric=task_.promotion_metric,
        direction=task_.promotion_direction,
        columns=columns,
        experiment_id=experiment_id,
        parent_run_id=parent_id,
        run_name=parent.info.run_name or parent_id,
        fingerprint=parent.data.tags.get("data_fingerprint", ""),
        promotion=parent.data.tags.get("promotion", ""),
        rows=rows,
        history=history,
        plots=fetch_plots(parent, downloads),
    )


def cell_row(run: Run, experiment_id: str, versions: dict[str, str], downloads: Path | None) -> Row:
    """A cell's row from its child run; with seeds, the shipping facts and plots of the seed it registered."""
    metrics, tags = run.data.metrics, run.data.tags
    scores = {f"test_{k[5:]}": v for k, v in metrics.items() if k.startswith("test/")}
    spread = {}
    for key in [k for k in scores if k.endswith("_mean")]:
        scores[key.removesuffix("_mean")] = scores.pop(key)
        spread[key.removesuffix("_mean")] = scores.pop(key.removesuffix("_mean") + "_std", 0.0)
    shipped, selected = run, {}
    if tags.get("selected_run"):
        found = tracker.search_runs([experiment_id], f"attributes.run_id = '{tags['selected_run']}'")
        shipped = found[0] if found else run
        selected = {f"test_{k[5:]}": v for k, v in shipped.data.metrics.items() if k.startswith("test/")}
        scores = selected | scores  # the seeds' means where there are; the int8 scores of the seed shipped
    ship = {
        key: shipped.data.metrics[name]
        for key, name in SHIPPING_METRICS.items()
        if name in shipped.data.metrics
    }
    gate = shipped.data.tags
    return Row(
        name=run.data.params.get("cell") or tags.get("cell") or run.info.run_name or run.info.run_id,
        scores=scores,
        spread=spread,
        seeds=int(metrics["ship/seeds"]) if "ship/seeds" in metrics else None,
        ship=ship,
        int8=(gate["int8"], gate.get("int8_gate", "")) if "int8" in gate else None,
        run_id=run.info.run_id,
        version=versions.get(shipped.info.run_id) or versions.get(run.info.run_id),
        plots=fetch_plots(run, downloads) + (fetch_plots(shipped, downloads) if shipped is not run else []),
        shipped_scores=selected,
    )


def baseline_rows(parent: Run) -> list[Row]:
    """The baselines' rows from the pipeline run's ``baseline/<name>/<metric>`` metrics."""
    found: dict[str, dict[str, float]] = {}
    for key, value in parent.data.metrics.items():
        if key.startswith("baseline/") and key.count("/") == 2:
            _, name, metric = key.split("/")
            found.setdefault(name, {})[f"test_{metric}"] = value
    return [
        Row(name=f"baseline {name}", scores=found[name], run_id=parent.info.run_id) for name in sorted(found)
    ]


def champion_history(model_name: str, metric: str) -> list[Version]:
    """The registered versions of ``model_name``, oldest first, the ``champion`` holder marked."""
    from mlflow.exceptions import MlflowException

    try:
        aliases = tracker.get_registered_model(model_name).aliases
    except MlflowException:  # a permanent error: nothing registered yet (outages end as TrackingUnavailable)
        return []
    champion = str(aliases.get("champion", ""))
    history = []
    for found in sorted(tracker.search_model_versions(f"name='{model_name}'"), key=lambda v: int(v.version)):
        score = found.tags.get(f"test_{metric}")
        history.append(
            Version(
                version=str(found.version),
                cell=found.tags.get("cell", ""),
                score=float(score) if score not in (None, "") else None,
                fingerprint=found.tags.get("data_fingerprint", ""),
                created=found.creation_timestamp / 1000,
                champion=str(found.version) == champion,
                run_id=found.tags.get("run_id") or found.run_id or "",
                held=" until ".join(
                    found.tags[key] for key in ("champion_since", "champion_until") if key in found.tags
                ),
            )
        )
    return history


def _started(run: Run) -> int:
    return run.info.start_time or 0


def write_report(path: Path | str, task: str | None = None) -> Path:
    """Render the bake-off report of every task (or one) as one self-contained HTML file.

    Reads the MLflow tracking URI in force. The file's folder is created if missing (the command line
    refuses a missing one first); the page is written beside ``path`` and renamed into place.

    Args:
        path: The HTML file to write.
        task: Only this task.

    Returns:
        The path written.

    Raises:
        ReportError: Unknown task, no pipeline run yet, or ``path`` cannot be written.
    """
    from flows.report_html import render
    from flows.report_runs import replace_file

    target = Path(path)
    if not target.exists():
        target.absolute().parent.mkdir(parents=True, exist_ok=True)
    check_output(target)
    with tempfile.TemporaryDirectory(prefix="seqops-report-") as downloads:  # private: mode 0700
        reports = gather(task, Path(downloads))
    replace_file(target, render(reports, time.time()))
    return target


def check_output(path: Path) -> None:
    """Refuse an output that is a folder or whose folder is missing or not writable, before any work."""
    import os

    folder = path.absolute().parent
    if path.is_dir():
        raise ReportError(f"--output {path}: is a folder; give an HTML file name")
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise ReportError(f"--output {path}: cannot write in {folder} (missing or not writable)")
