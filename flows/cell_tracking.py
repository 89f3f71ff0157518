"""What a cell's MLflow run shows: the settings that apply, its plots, scores and a description in words."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from flows.config import TaskSettings
from flows.tables import SHIPPING_METRICS, direction_words
from flows.tracker import tracker
from models.family import get_family
from tasks import Task


def cell_params(task_: Task, settings: TaskSettings, cell: str, profile: str) -> dict[str, Any]:
    """The parameters of a cell's run: the network and the training settings its family uses."""
    unused = set(get_family(task_.family).unused_train_settings)
    model = settings.model.model_copy(update={"cell": cell}).model_dump()
    options = model.pop("options", None) or {}
    return {
        "task": task_.name,
        "cell": cell,
        "profile": profile,
        **{f"model.{k}": v for k, v in model.items()},
        **{f"model.options.{k}": v for k, v in options.items()},
        **{f"train.{k}": v for k, v in settings.train.model_dump().items() if k not in unused},
    }


def shipping_metrics(row: dict[str, Any]) -> dict[str, float]:
    """The test scores (``test/<metric>``) and shipping facts (``ship/...``) of a cell's result row."""
    scores = {f"test/{k.removeprefix('test_')}": v for k, v in row.items() if k.startswith("test_")}
    facts = {
        name: row[key] for key, name in SHIPPING_METRICS.items() if isinstance(row.get(key), int | float)
    }
    return scores | facts


def learning_curves_figure(history: list[dict[str, float]], title: str) -> Figure:
    """Training and validation curves of one fit, one panel per quantity, train and validation together.

    Args:
        history: One entry per epoch: ``epoch`` and the ``train/<name>`` / ``val/<name>`` metrics.
        title: The figure's title (task and cell).

    Returns:
        The figure (loss first, then the validation scores that have no training twin).
    """
    names = sorted({key.split("/", 1)[1] for entry in history for key in entry if "/" in key})
    names = [n for n in names if n != "learning_rate"]
    names.sort(key=lambda name: (name != "loss", name))
    columns = min(len(names), 3) or 1
    rows = -(-len(names) // columns) or 1
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    epochs = [entry["epoch"] + 1 for entry in history]
    for axis, name in zip(axes.flat, names, strict=False):
        for stage, label, style in (("train", "training", "-"), ("val", "validation", "--")):
            values = [entry.get(f"{stage}/{name}") for entry in history]
            if any(v is not None for v in values):
                axis.plot(epochs, values, style, marker="o", markersize=3, label=label)
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    for axis in list(axes.flat)[len(names) :]:
        axis.set_visible(False)
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def log_figure(figure: Figure, name: str) -> None:
    """Log a figure as an image of the active run and free it."""
    tracker.log_figure(figure, name)
    plt.close(figure)


def cell_description(row: dict[str, Any], task_: Task, profile: str) -> str:
    """A cell run's description in words: what was trained, how it scored, what became of it."""
    metric = task_.promotion_metric
    lines = [
        f"**{row['cell'].upper()}** on **{task_.name}** (profile `{profile}`), seed {row.get('seed')}.",
        "",
        f"Trained {row.get('epochs', '?')} epochs in {row.get('train_seconds', '?')} s; best "
        f"{row.get('validation_metric')} on validation {row.get('validation_score', float('nan')):.4g}.",
    ]
    if f"test_{metric}" in row:
        lines.append(
            f"Test {metric} through onnxruntime: **{row[f'test_{metric}']:.4g}** ({direction_words(task_)}); "
            f"ONNX {row.get('onnx_kb')} KB, parity error {row.get('parity_error', 0):.1e}, "
            f"int8: {row.get('int8', 'not tried')}."
        )
    status = row.get("status", "")
    if "version" in row:
        status = f"registered as version {row['version']} of seqops-{task_.name}"
    lines += ["", f"Outcome: {status}."]
    return "\n".join(lines)
