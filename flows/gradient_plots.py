"""Figures of gradient flow (matplotlib, headless), drawn from ``GradientFlow.summary()``.

``cell_gradient_figure`` shows one trained cell: how far back in time the loss gradient reaches, and how
large each layer's gradient was per epoch (with the steps clipping cut). ``compare_cells_figure`` puts
the RNN, LSTM and GRU of one task side by side, each curve scaled to 1 at the last input, so a gradient
that vanishes shows as a curve falling toward the early steps. No MLflow here: the caller logs them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, NullFormatter

from models.gradient_flow import FIRST, LAST

TIME_AXIS = "time step (t = T is the last input)"
CELL_COLOURS = {"rnn": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}
OTHER_COLOURS = ["tab:purple", "tab:orange", "tab:brown", "tab:pink", "tab:olive", "tab:cyan", "tab:gray"]
CLIPPED_COLOUR = "#c9c9c9"


def positive(values: Sequence[float]) -> np.ndarray:
    """``values`` as floats, with zeros and non-finite values blanked (a log axis cannot show them)."""
    array = np.asarray(values, dtype=float)
    return np.where(np.isfinite(array) & (array > 0), array, np.nan)


def log_axis(axes: plt.Axes) -> None:
    """Log scale on y; under two decades of data, plain tick labels (``0.002``) and some between decades."""
    axes.set_yscale("log")
    low, high = axes.get_ylim()
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    if low > 0 and high / low < 10:
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(plain)
    elif low > 0 and high / low < 100:
        axes.yaxis.set_major_formatter(plain)
        axes.yaxis.set_minor_formatter(
            FuncFormatter(lambda value, _: f"{value:g}" if f"{value:.0e}"[0] in "25" else "")
        )
    else:
        axes.yaxis.set_minor_formatter(NullFormatter())


def profile_label(summary: Mapping[str, Any], key: str) -> str:
    """Legend text of a ``||dL/dh_t||`` curve: which epoch it was measured after."""
    epoch = summary.get("profile_epochs", {}).get(key)
    return f"after epoch {epoch + 1} ({key.split()[0]})" if epoch is not None else key


def draw_profiles(axes: plt.Axes, summary: Mapping[str, Any]) -> None:
    """The first and last epoch's ``||dL/dh_t||`` per time step on a log axis."""
    profiles = summary.get("hidden_profiles", {})
    epochs = summary.get("profile_epochs", {})
    same = FIRST in epochs and epochs.get(FIRST) == epochs.get(LAST)
    for key, style in ((FIRST, "--"), (LAST, "-")):
        if key in profiles and not (same and key == FIRST):
            values = positive(profiles[key])
            axes.plot(np.arange(1, len(values) + 1), values, style, label=profile_label(summary, key))
    log_axis(axes)
    axes.set_xlabel(TIME_AXIS)
    axes.set_ylabel("gradient norm ||dL/dh_t||")
    layer = summary.get("recurrent_layer") or "no recurrent layer"
    axes.set_title(f"How far back the loss gradient reaches\n(outputs h_t of {layer})", fontsize=10)
    if axes.lines:
        axes.legend(fontsize=8, loc="best")
    else:
        axes.text(0.5, 0.5, "not measured", ha="center", va="center", transform=axes.transAxes)
    axes.grid(True, which="major", alpha=0.3)


def draw_layers(axes: plt.Axes, summary: Mapping[str, Any]) -> int:
    """Mean gradient norm per layer per epoch (log axis), clipped steps as bars on a second axis.

    Returns:
        The number of legend entries (to size the figure).
    """
    per_epoch: list[dict[str, float]] = summary.get("layer_norms", [])
    epochs = np.arange(1, len(per_epoch) + 1)
    layers = list(dict.fromkeys(name for norms in per_epoch for name in norms))
    clipped = twin = None
    if per_epoch:
        twin = axes.twinx()
        clipped = twin.bar(epochs, summary.get("clipped_steps", [0] * len(epochs)), 0.6, color=CLIPPED_COLOUR)
        clipped.set_label(f"steps clipped (of {max(summary.get('steps', [0]), default=0)} per epoch)")
        twin.set_ylabel("steps clipped in the epoch")
        twin.set_ylim(0, max(1, *summary.get("steps", [1])) * 1.05)
        axes.set_zorder(twin.get_zorder() + 1)  # lines over the bars
        axes.patch.set_visible(False)
    for name in layers:
        axes.plot(
            epochs, positive([norms.get(name, math.nan) for norms in per_epoch]), "o-", ms=4, label=name
        )
    if summary.get("global_norms"):
        axes.plot(epochs, positive(summary["global_norms"]), "k--", lw=1.5, label="all layers (global norm)")
    if summary.get("clip_norm"):
        axes.axhline(
            summary["clip_norm"], color="k", ls=":", lw=1, label=f"clip norm {summary['clip_norm']:g}"
        )
    log_axis(axes)
    axes.set_xlabel("epoch")
    axes.set_ylabel("mean gradient norm per step (before clipping)")
    axes.set_title("Gradient size per layer", fontsize=10)
    if len(epochs):
        axes.set_xticks(epochs if len(epochs) <= 12 else np.linspace(1, len(epochs), 6).round())
    axes.grid(True, which="major", alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    if clipped is not None:
        handles, labels = [*handles, clipped], [*labels, clipped.get_label()]
    if handles:
        columns = 2 if len(handles) > 4 else 1
        axes.legend(
            handles, labels, fontsize=8, ncol=columns, loc="upper center", bbox_to_anchor=(0.5, -0.16)
        )
    return len(handles)


def cell_gradient_figure(summary: Mapping[str, Any], title: str) -> plt.Figure:
    """One cell's gradient flow: ``||dL/dh_t||`` through time, and per-layer norms per epoch.

    Args:
        summary: ``GradientFlow.summary()`` of a fit.
        title: The figure's title (task and cell, for example).

    Returns:
        The figure (the caller closes it).
    """
    entries = len(summary.get("layer_norms", [{}])[-1] if summary.get("layer_norms") else {}) + 3
    legend_rows = math.ceil(entries / (2 if entries > 4 else 1))
    figure, (left, right) = plt.subplots(
        1, 2, figsize=(11.5, 4.4 + 0.2 * legend_rows), layout="constrained", gridspec_kw={"wspace": 0.08}
    )
    draw_profiles(left, summary)
    draw_layers(right, summary)
    figure.suptitle(title, fontsize=12)
    return figure


def compare_cells_figure(summaries: Mapping[str, Mapping[str, Any]], title: str) -> plt.Figure:
    """RNN, LSTM and GRU of one task: ``||dL/dh_t||`` at the last epoch, relative to the last step.

    Each curve is divided by its value at the last input, so every curve ends at 1 and a gradient that
    vanishes on its way back through time falls toward the early steps.

    Args:
        summaries: Cell name (``rnn``, ``lstm``, ``gru`` or any other) to its ``GradientFlow.summary()``.
        title: The figure's title (the task, for example).

    Returns:
        The figure (the caller closes it).
    """
    figure, axes = plt.subplots(figsize=(7.5, 5.0), layout="constrained")
    others = iter(OTHER_COLOURS * 3)
    drawn = 0
    for cell, summary in summaries.items():
        profiles = summary.get("hidden_profiles", {})
        profile = profiles.get(LAST) or profiles.get(FIRST)
        if not profile or not profile[-1] > 0:
            continue
        relative = positive(np.asarray(profile, dtype=float) / profile[-1])
        first = relative[0]
        reach = f"step 1 gets {first:.2g} × step T's" if np.isfinite(first) else "nothing reaches step 1"
        colour = CELL_COLOURS.get(cell.lower()) or next(others)
        axes.plot(
            np.arange(1, len(relative) + 1), relative, color=colour, lw=2, label=f"{cell.upper()}: {reach}"
        )
        drawn += 1
    axes.axhline(1.0, color="k", ls=":", lw=1)
    log_axis(axes)
    axes.set_xlabel(TIME_AXIS)
    axes.set_ylabel("||dL/dh_t|| relative to the last step (t = T)")
    axes.set_title(
        "How much of the gradient at the last input reaches each earlier step\n"
        "(a curve falling to the left: the gradient vanishes on its way back)",
        fontsize=9,
    )
    axes.grid(True, which="major", alpha=0.3)
    if drawn:
        axes.legend(fontsize=9, loc="lower right")
    else:
        axes.text(
            0.5, 0.5, "no gradient profile measured", ha="center", va="center", transform=axes.transAxes
        )
    figure.suptitle(title, fontsize=12)
    return figure
