"""Plots shared by tasks (matplotlib, headless): figures a task's ``diagnostics`` hook returns."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np


def confusion_matrix_figure(matrix: np.ndarray, labels: list[str], title: str) -> plt.Figure:
    """A labelled confusion-matrix heat map with counts in the cells.

    Args:
        matrix: Counts, true classes as rows and predicted classes as columns.
        labels: Class names in class-id order.
        title: The figure's title.

    Returns:
        The figure (the caller closes it).
    """
    figure, axes = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    axes.imshow(matrix, cmap="Blues")
    axes.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    return figure
