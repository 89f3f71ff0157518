"""Plots shared by tasks (matplotlib, headless): figures a task's ``diagnostics`` hook returns.

Every figure is sized to what it shows (classes, tokens, label lengths) and laid out with matplotlib's
constrained layout, so that MLflow's PNG (saved at the figure's size) cuts nothing off. Text on a
coloured cell takes the colour that contrasts most with that cell. ``tests/plot_rules.py`` checks
these rules on every figure the tasks log.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np

CHAR_WIDTH = 0.62  # a DejaVu Sans character's width at most, in ems (for sizing figures before drawing)
LINE_HEIGHT = 1.45  # a text line's height in ems, with its spacing
TITLE_POINTS = 11.0
DARK, LIGHT = "black", "white"  # one of them contrasts at least 4.58:1 with any colour


def text_inches(labels: Sequence[str], points: float) -> float:
    """The width in inches of the longest label at ``points`` (a bound, not a measurement)."""
    return max((len(label) for label in labels), default=0) * CHAR_WIDTH * points / 72


def shorten(label: str, limit: int = 28) -> str:
    """``label`` cut to ``limit`` characters with an ellipsis: tick labels stay one readable line."""
    return label if len(label) <= limit else label[: limit - 1] + "…"


def wrap_title(title: str, width_inches: float, points: float = TITLE_POINTS) -> str:
    """``title`` wrapped into lines that fit ``width_inches`` at ``points``."""
    return textwrap.fill(title, max(10, int(width_inches * 72 / (CHAR_WIDTH * points))))


def title_inches(title: str, width_inches: float, points: float = TITLE_POINTS) -> float:
    """The height in inches of ``title`` wrapped to ``width_inches``."""
    return wrap_title(title, width_inches, points).count("\n") * LINE_HEIGHT * points / 72 + 0.45


def relative_luminance(rgba: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour (alpha ignored)."""
    channels = np.asarray(rgba[:3], dtype=float)
    linear = np.where(channels <= 0.04045, channels / 12.92, ((channels + 0.055) / 1.055) ** 2.4)
    return float(linear @ np.array([0.2126, 0.7152, 0.0722]))


def text_colour_on(rgba: Sequence[float]) -> str:
    """Dark or white text, whichever contrasts more with a cell of colour ``rgba`` (at least 4.5:1)."""
    background = relative_luminance(rgba)
    dark = relative_luminance(matplotlib.colors.to_rgba(DARK))
    return DARK if (background + 0.05) / (dark + 0.05) >= 1.05 / (background + 0.05) else LIGHT


def confusion_matrix_figure(matrix: np.ndarray, labels: list[str], title: str) -> plt.Figure:
    """A labelled confusion-matrix heat map with counts in the cells and each class's recall beside it.

    The colour scale starts at 0, so a cell's shade is its count's share of the largest count; each count
    is written in the colour that contrasts most with its cell. Cells, fonts and margins follow the class
    count and the longest class name.

    Args:
        matrix: Counts, true classes as rows and predicted classes as columns.
        labels: Class names in class-id order.
        title: The figure's title.

    Returns:
        The figure (the caller closes it).
    """
    classes = len(labels)
    names = [shorten(label) for label in labels]
    tick_points = 10.0 if classes <= 8 else 8.0
    digits = len(str(int(matrix.max(initial=0))))
    cell = max(float(np.clip(4.8 / classes, 0.42, 1.4)), (digits + 1) * CHAR_WIDTH * 7 / 72)
    count_points = float(np.clip(min(0.3 * cell * 72, cell * 72 / ((digits + 1) * CHAR_WIDTH)), 7, 12))
    label_width = text_inches(names, tick_points)
    rotate = label_width > cell * 0.9  # long names across the bottom are turned to 45 degrees
    bottom = (label_width * 0.71 + 0.3 if rotate else 0.3) + 0.45
    width = max(label_width + 0.55 + classes * cell + 1.0, 4.5)
    height = title_inches(title, width) + classes * cell + bottom + 0.2
    figure, axes = plt.subplots(figsize=(width, height), layout="constrained")
    image = axes.imshow(matrix, cmap="Blues", vmin=0, vmax=max(int(matrix.max(initial=0)), 1))
    axes.set_xticks(range(classes), names, fontsize=tick_points)
    axes.set_yticks(range(classes), names, fontsize=tick_points)
    if rotate:
        plt.setp(axes.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
    axes.set_xlabel("predicted class", fontsize=tick_points + 1)
    axes.set_ylabel("true class", fontsize=tick_points + 1)
    axes.set_title(wrap_title(title, width), fontsize=TITLE_POINTS)
    for (row, column), count in np.ndenumerate(matrix):
        colour = text_colour_on(image.cmap(image.norm(count)))
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=count_points)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = np.diag(matrix) / matrix.sum(axis=1)
    recall_axis = axes.secondary_yaxis("right")
    recall_axis.set_yticks(
        range(classes), ["–" if np.isnan(r) else f"{r:.0%}" for r in recall], fontsize=tick_points
    )
    recall_axis.set_ylabel("recall (true class)", fontsize=tick_points + 1)
    figure.draw_without_rendering()  # a secondary axis needs a second layout pass to be fitted in
    return figure
