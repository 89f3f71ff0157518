"""Translation's diagnostics: attention heat maps and a table of example translations."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np


def attention_figure(records: list[dict[str, Any]], title: str) -> plt.Figure:
    """Attention heat maps, one per translated sentence: output tokens down, source tokens across.

    Args:
        records: Predictions made with ``keep_attention`` (``attention``, source and target tokens).
        title: The figure's title.

    Returns:
        The figure (the caller closes it).
    """
    figure, axes = plt.subplots(len(records), 1, figsize=(9, 3.2 * len(records)))
    for axis, record in zip(np.atleast_1d(axes), records, strict=True):
        axis.imshow(np.array(record["attention"]), cmap="viridis", aspect="auto")
        axis.set_xticks(range(len(record["source_tokens"])), record["source_tokens"], rotation=60, fontsize=7)
        axis.set_yticks(range(len(record["target_tokens"])), record["target_tokens"], fontsize=7)
    np.atleast_1d(axes)[0].set_title(title)
    figure.tight_layout()
    return figure
