"""Translation's diagnostics: attention heat maps of a few test sentences.

Each sentence gets its own panel, sized by its tokens: one square cell per (output token, source token)
pair, large enough for a token label at a fixed, readable font size. A long sentence makes a tall
figure rather than a stack of labels printed over each other.
"""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np

from tasks.common.plots import shorten, text_inches, title_inches, wrap_title

TOKEN_POINTS = 8.0
MIN_CELL = 0.2  # inches: a token label at TOKEN_POINTS needs about 0.16 in of height
MAX_CELL = 0.35
TOKEN_CHARACTERS = 16  # longer subword tokens are cut, with an ellipsis


def attention_figure(records: list[dict[str, Any]], title: str) -> plt.Figure:
    """Attention heat maps, one per translated sentence: output tokens down, source tokens across.

    Args:
        records: Predictions made with ``keep_attention`` (``attention``, source and target tokens).
        title: The figure's title.

    Returns:
        The figure (the caller closes it).
    """
    longest = max(max(len(r["source_tokens"]), len(r["target_tokens"])) for r in records)
    cell = float(np.clip(3.0 / max(longest, 1), MIN_CELL, MAX_CELL))
    sources = [[shorten(t, TOKEN_CHARACTERS) for t in r["source_tokens"]] for r in records]
    targets = [[shorten(t, TOKEN_CHARACTERS) for t in r["target_tokens"]] for r in records]
    left = max(text_inches(tokens, TOKEN_POINTS) for tokens in targets) + 0.7  # labels and axis label
    below = max(text_inches(tokens, TOKEN_POINTS) for tokens in sources) + 0.55
    columns = max(len(r["source_tokens"]) for r in records)
    width = max(left + columns * cell + 1.3, 4.5)  # the colour bar takes about an inch on the right
    panels = [len(r["target_tokens"]) * cell + below + 0.35 for r in records]  # + panel title
    height = title_inches(title, width) + sum(panels)
    figure, axes = plt.subplots(
        len(records),
        1,
        figsize=(width, height),
        layout="constrained",
        gridspec_kw={"height_ratios": panels},
        squeeze=False,
    )
    for index, (axis, record) in enumerate(zip(axes[:, 0], records, strict=True)):
        weights = np.array(record["attention"], dtype=float).reshape(len(targets[index]), len(sources[index]))
        image = axis.imshow(weights, cmap="viridis", vmin=0, vmax=1, aspect="equal")
        axis.set_xticks(range(len(sources[index])), sources[index], rotation=90, fontsize=TOKEN_POINTS)
        axis.set_yticks(range(len(targets[index])), targets[index], fontsize=TOKEN_POINTS)
        axis.set_xlabel("source token", fontsize=TOKEN_POINTS + 1)
        axis.set_ylabel("output token", fontsize=TOKEN_POINTS + 1)
        axis.set_title(f"sentence {index + 1}", fontsize=TOKEN_POINTS + 1, loc="left")
        bar = figure.colorbar(image, ax=axis, fraction=min(0.05, 1.2 / width), pad=0.02)
        bar.ax.tick_params(labelsize=TOKEN_POINTS)
        bar.set_label("attention", fontsize=TOKEN_POINTS)
    figure.suptitle(wrap_title(title, width - 0.5), fontsize=11)
    return figure
