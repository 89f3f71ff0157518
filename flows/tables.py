"""The tables the CLI prints: a pipeline run's results per task, a batch job's inputs against training."""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from tasks import Task, get_task

SHIPPING_METRICS = {  # result-row key -> MLflow metric on the cell run
    "onnx_kb": "ship/onnx_kb",
    "parity_error": "ship/parity_error",
    "train_seconds": "ship/train_seconds",
    "parameter_count": "ship/parameters",
    "ms_per_row": "ship/ms_per_row",
    "epochs": "ship/epochs",
}


def summary_tables(results: list[dict[str, Any]]) -> list[Table]:
    """One table per task: test metrics per cell, training time, size, version and the promotion.

    Cells trained with several seeds show each metric as mean ± standard deviation over the seeds.
    """
    tables = []
    for result in results:
        rows = result["cells"]
        task = get_task(result["task"])
        metrics = summary_metrics(task, list(rows[0]) if rows else [])
        seeded = any("seeds" in row for row in rows)
        columns = {
            "cell": "cell",
            **({"seeds": "seeds"} if seeded else {}),
            "epochs": "epochs",
            "train_seconds": "train s",
            "parameter_count": "weights",
            **{m: m.removeprefix("test_") for m in metrics},
            "onnx_kb": "ONNX KB",
            "parity_error": "parity",
            "int8": "int8",
            "version": "version",
            "status": "status",
        }
        spread = "metrics: mean ± sd over seeds; the rest: the seed registered (best on validation);"
        spread = spread if seeded else ""
        table = Table(
            *columns.values(),
            title=f"{result['task']} (test split, onnxruntime)",
            caption=f"{spread} champion gate: {promotion_headline(result['promotion'])}".strip(),
        )
        for row in rows + result.get("baselines", []):
            table.add_row(*(_spread(row, key) for key in columns))
        tables.append(table)
    return tables


def direction_words(task: Task) -> str:
    """The promotion metric's direction in words: ``higher is better`` or ``lower is better``."""
    return "higher is better" if task.promotion_direction == "max" else "lower is better"


def task_summary(task: Task) -> str:
    """What a task is, in one line: the first line of its class's docstring (else its name)."""
    return (type(task).__doc__ or task.name).strip().splitlines()[0]


def summary_metrics(task: Task, keys: list[str]) -> list[str]:
    """The ``test_*`` keys of a result row that a summary table shows.

    The task's ``summary_metrics`` in its order (every test metric when it names none; the promotion
    metric first if they leave it out), then the promotion metric of the int8 variant. Seed spreads
    (``_mean``, ``_std``) are shown with their metric, never as columns of their own.
    """
    tested = [key for key in keys if key.startswith("test_") and not key.endswith(("_mean", "_std"))]
    chosen = [f"test_{name}" for name in task.summary_metrics] or [
        k for k in tested if not k.endswith("_int8")
    ]
    promotion = f"test_{task.promotion_metric}"
    chosen = [*([] if promotion in chosen else [promotion]), *chosen, f"{promotion}_int8"]
    return [key for key in chosen if key in tested]


def _spread(row: dict[str, Any], key: str) -> str:
    if f"{key}_mean" in row:
        return f"{format_value(row[f'{key}_mean'])} ± {row[f'{key}_std']:.2g}"
    return format_value(row.get(key, ""))


def format_value(value: Any) -> str:
    """A number as a table shows it: 4 significant digits, thousands grouped, tiny values in e-notation."""
    if isinstance(value, float):
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


def promotion_headline(decision: dict[str, Any]) -> str:
    """The gate's decision in plain words: ``promoted version 3: first champion``, ``kept version 2: ...``."""
    candidate, held = decision.get("candidate_version"), decision.get("champion_version")
    if decision.get("promoted"):
        if held is None:
            return f"promoted version {candidate}: first champion"
        return f"promoted version {candidate} over version {held}: {decision['reason']}"
    if held is not None:
        return f"kept version {held}: version {candidate} {decision['reason']}"
    return f"not promoted: {decision['reason']}"


def drift_table(drift: list[dict[str, Any]]) -> Table:
    """A batch job's input statistics beside the training data's, with the shift of each."""
    table = Table("input", "served", "training", "shift", title="inputs against the training data")
    for row in drift:
        shift = row["shift"]
        if shift is None:
            change = ""
        elif row["statistic"].startswith("length"):
            change = f"{shift:+.1%}"
        else:
            change = f"{shift:+.3f}"
        table.add_row(row["statistic"], _number(row["served"]), _number(row["training"]), change)
    return table


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4g}"


def registry_table(task: str | None) -> tuple[Table, list[str]]:
    """Registered seqops model versions (of one task, or all), their aliases, cells and test metrics.

    Returns:
        The table, and the names asked for that are not registered.
    """
    from mlflow.exceptions import MlflowException

    from flows.tracker import tracker

    missing = []
    table = Table("model", "version", "aliases", "cell", "metrics", "created")
    names = (
        [f"seqops-{task}"]
        if task
        else [m.name for m in tracker.search_registered_models("name LIKE 'seqops-%'")]
    )
    for name in names:
        try:
            registered = tracker.get_registered_model(name)
        except MlflowException:  # a permanent error: no such model (outages end as TrackingUnavailable)
            missing.append(name)
            continue
        aliases: dict[str, list[str]] = {}
        for alias, number in registered.aliases.items():
            aliases.setdefault(str(number), []).append(alias)
        found = tracker.search_model_versions(f"name='{name}'")
        for version in sorted(found, key=lambda v: int(v.version)):
            metrics = ", ".join(
                f"{k[5:]}={float(v):.3f}" for k, v in sorted(version.tags.items()) if k.startswith("test_")
            )
            table.add_row(
                name,
                str(version.version),
                ",".join(aliases.get(str(version.version), [])),
                version.tags.get("cell", ""),
                metrics,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(version.creation_timestamp / 1000)),
            )
    return table, missing
