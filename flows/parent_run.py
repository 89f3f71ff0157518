"""What a task's parent run and experiment show: descriptions, the cells' gradient flow, the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect import get_run_logger

from flows.cell_tracking import log_figure
from flows.gradient_plots import compare_cells_figure
from flows.links import VIEW_KEY
from flows.report import write_report
from flows.tables import direction_words, task_summary
from flows.tracker import tracker
from flows.tracking import DESCRIPTION
from serving.redaction import mask_credentials
from tasks import PreparedData, Task


def runs_view(task_: Task) -> dict[str, Any]:
    """The saved runs view of a task's experiment: the columns, order and charts a user should see first.

    MLflow's UI opens it from ``viewStateShareKey`` in a link (``flows.links.runs_view_link``): the runs
    best first by the promotion metric (cells as rows of their own), the promotion score, cell, champion, size
    and speed as columns, and training and validation loss in one chart.
    """
    metric = f"test/{task_.promotion_metric}"
    # Few columns, so that the champion's still fits beside the score on a laptop screen.
    columns = [
        f"metrics.`{metric}`",
        "params.`cell`",
        "tags.`champion`",
        *(f"metrics.`ship/{name}`" for name in ("onnx_kb", "ms_per_row")),
    ]
    curves = {"uuid": "curves", "name": "Learning curves", "display": True, "isReordered": False}
    loss_chart = {
        "uuid": "loss",
        "type": "LINE",
        "metricSectionId": "curves",
        "displayName": "training (train/loss) and validation (val/loss) loss",
        "metricKey": "train/loss",
        "selectedMetricKeys": ["train/loss", "val/loss"],
        "xAxisKey": "step",
        "scaleType": "linear",
        "xAxisScaleType": "linear",
        "lineSmoothness": 0,
        "runsCountToCompare": 10,
        "useGlobalXaxisKey": False,
        "yAxisKey": "metric",
        "yAxisExpressions": [],
        "range": {},
    }
    return {
        "orderByKey": f"metrics.`{metric}`",
        "orderByAsc": task_.promotion_direction == "min",
        "selectedColumns": columns,
        "columnWidths": {"tags.`champion`": 220},
        "compareRunCharts": [loss_chart | {"deleted": False, "isGenerated": False}],
        "compareRunSections": [curves | {"deleted": False, "isGenerated": False}],
        "isAccordionReordered": True,
        "hideEmptyCharts": True,
    }


def experiment_tags(task_: Task) -> dict[str, str]:
    """The tags of a task's experiment: its saved runs view and its description."""
    summary = task_summary(task_)
    description = (
        f"**{task_.name}**: {summary}\n\n"
        "Each pipeline run is a parent run (data lineage, classical baselines, the champion decision, "
        "the cells' gradient flow and the bake-off report) with one child run per recurrent cell "
        "(curves under `train/` and `val/`, test scores under `test/`, size and speed under `ship/`, "
        f"gradient norms under `grad/`). Promotion metric: test {task_.promotion_metric} "
        f"({direction_words(task_)}); the registered model is `seqops-{task_.name}`."
    )
    return {DESCRIPTION: description, f"mlflow.sharedViewState.{VIEW_KEY}": json.dumps(runs_view(task_))}


def parent_description(
    task_: Task,
    profile: str,
    prepared: PreparedData,
    rows: list[dict[str, Any]],
    baselines: list[dict[str, Any]],
    headline: str,
) -> str:
    """A parent run's description: the data, each cell's and baseline's score, the champion decision."""
    metric = f"test_{task_.promotion_metric}"

    def score(row: dict[str, Any]) -> str:
        value = row.get(f"{metric}_mean", row.get(metric))
        return f"{value:.4g}" if isinstance(value, float) else str(row.get("status", "not scored"))

    stats = ", ".join(f"{k} {v:g}" for k, v in prepared.stats.items())
    lines = [
        f"Pipeline run of **{task_.name}** (profile `{profile}`) on `{mask_credentials(prepared.source)}` "
        f"({stats}).",
        "",
        f"**Champion gate:** {headline}.",
        "",
        f"Test {task_.promotion_metric} per model:",
        *(f"- {row['cell']}: {score(row)}" for row in rows + baselines),
    ]
    return "\n".join(lines)


def log_cell_comparison(task_name: str, rows: list[dict[str, Any]]) -> None:
    """Log one plot comparing the cells' gradient flow (RNN vs LSTM vs GRU) to the active parent run."""
    flows = {row["cell"]: row["gradient_flow"] for row in rows if row.get("gradient_flow")}
    if flows:
        title = f"{task_name}: how far back the loss gradient reaches"
        log_figure(compare_cells_figure(flows, title), "gradient_flow_cells.png")


def log_task_report(task_name: str, work_dir: Path) -> None:
    """Write the task's bake-off report and log it to the active parent run as ``report.html``.

    The report only reads what the run logged: a failure to make it is a warning, never a failed run.
    """
    try:
        path = write_report(work_dir / "reports" / task_name / "report.html", task=task_name)
        tracker.log_artifact(path)
    except Exception as error:  # noqa: BLE001 (see above)
        get_run_logger().warning("%s: no bake-off report: %s", task_name, mask_credentials(str(error)))


def log_report(work_dir: Path) -> None:
    """Write the bake-off report of every task to ``<work_dir>/report.html`` (a warning if it cannot)."""
    try:
        path = write_report(work_dir / "report.html")
    except Exception as error:  # noqa: BLE001 (the models are shipped and promoted by now)
        get_run_logger().warning("no bake-off report: %s", mask_credentials(str(error)))
        return
    get_run_logger().info("bake-off report: %s", path.resolve())
