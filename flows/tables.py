"""The tables the CLI prints: a pipeline run's results per task, a batch job's inputs against training."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from tasks import get_task


def summary_tables(results: list[dict[str, Any]]) -> list[Table]:
    """One table per task: test metrics per cell, training time, size, version and the promotion."""
    tables = []
    for result in results:
        rows = result["cells"]
        promoted_by = get_task(result["task"]).promotion_metric
        # To keep the table readable: baselines (naive_*, seasonal_naive_*) and int8 scores only on
        # the promotion metric; per-class recalls and translation length ratios only in MLflow.
        metrics = [
            k
            for k in (rows[0] if rows else {})
            if k.startswith("test_")
            and ("naive" not in k or k.endswith(f"_{promoted_by}"))
            and (not k.endswith("_int8") or k == f"test_{promoted_by}_int8")
            and not k.startswith(("test_recall_", "test_length_ratio", "test_rejected"))
        ]
        columns = {
            "cell": "cell",
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
        table = Table(
            *columns.values(),
            title=f"{result['task']} (test split, onnxruntime)",
            caption=f"promotion: {result['promotion']['reason']}",
        )
        for row in rows:
            table.add_row(*(_cell(row.get(key, "")) for key in columns))
        tables.append(table)
    return tables


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        return f"{value:.2e}" if 0 < abs(value) < 1e-3 else f"{value:.4g}"
    return str(value)


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
