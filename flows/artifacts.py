"""What a pipeline run shows in the Prefect UI: a results table and the champion decision per task."""

from __future__ import annotations

import re
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

from flows.links import run_link, version_link
from flows.tables import direction_words, format_value, promotion_headline, summary_metrics
from tasks import Task


def artifact_key(task_name: str, what: str) -> str:
    """A Prefect artifact key (lowercase letters, digits and dashes only)."""
    slug = re.sub(r"[^a-z0-9]+", "-", task_name.lower()).strip("-")
    return f"seqops-{slug}-{what}"


def results_table(task_: Task, rows: list[dict[str, Any]], experiment_id: str) -> list[dict[str, str]]:
    """The cells' and baselines' results as rows of few, rounded columns: the promotion metric first.

    Args:
        task_: The task (its promotion and summary metrics choose the score columns).
        rows: The cells' result rows, then the baselines'.
        experiment_id: The MLflow experiment the cells' runs are in (for links).

    Returns:
        One dict per row: model, scores, int8, size, speed, training time, version, status, links.
    """
    keys = sorted({key for row in rows for key in row})
    metrics = summary_metrics(task_, keys)
    promotion = f"test_{task_.promotion_metric}"
    metrics.sort(key=lambda key: key != promotion)
    seeded = any("seeds" in row for row in rows)
    table = []
    for row in rows:
        entry = {"model": row["cell"]}
        for key in metrics:
            label = key.removeprefix("test_") + (" ★" if key == promotion else "")
            value = row.get(f"{key}_mean", row.get(key, ""))
            spread = f" ± {format_value(row[f'{key}_std'])}" if f"{key}_std" in row else ""
            entry[label] = format_value(value) + spread
        if seeded:
            entry["seeds"] = str(row.get("seeds", ""))
        entry.update(
            {
                "int8": str(row.get("int8", "")),
                "ONNX KB": format_value(row.get("onnx_kb", "")),
                "ms/row": format_value(row.get("ms_per_row", "")),
                "train s": format_value(row.get("train_seconds", "")),
                "version": str(row.get("version", "")),
                "status": str(row.get("status", "")),
                "MLflow run": run_link(experiment_id, row["run_id"]) if "run_id" in row else "",
                "registry": version_link(f"seqops-{task_.name}", row["version"]) if "version" in row else "",
            }
        )
        table.append(entry)
    return table


def decision_markdown(task_: Task, decision: dict[str, Any]) -> str:
    """The champion gate's decision in plain words, with both scores and links to both versions."""
    model = f"seqops-{task_.name}"
    lines = [f"## {task_.name}: {promotion_headline(decision)}", ""]
    if "metric" in decision:
        lines += [
            f"Test **{decision['metric']}** ({direction_words(task_)}), both on this run's test split:",
            "",
            "| | version | score |",
            "|---|---|---|",
        ]
        for side, label in (("candidate", "best new model"), ("champion", "champion before this run")):
            version = decision.get(f"{side}_version")
            link = f"[{version}]({version_link(model, version)})" if version is not None else "none"
            score = decision.get(side)
            lines.append(f"| {label} | {link} | {'' if score is None else format_value(score)} |")
    return "\n".join(lines)


def publish_task_artifacts(
    task_: Task, rows: list[dict[str, Any]], decision: dict[str, Any], experiment_id: str
) -> None:
    """Create the task's results table and decision Markdown artifacts in the running Prefect flow."""
    create_table_artifact(
        table=results_table(task_, rows, experiment_id),
        key=artifact_key(task_.name, "cells"),
        description=f"{task_.name}: each network and classical baseline on the test split (onnxruntime); "
        f"★ marks the metric that decides promotion.",
    )
    create_markdown_artifact(
        key=artifact_key(task_.name, "promotion"),
        markdown=decision_markdown(task_, decision),
        description=f"{task_.name}: the champion gate's decision",
    )
