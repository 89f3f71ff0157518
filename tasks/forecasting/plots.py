"""Forecasting's diagnostic plot: recent history, actual future and forecast for a few test windows.

Only the end of each window's history is drawn (three horizons or 48 steps, whichever is more): with
a lookback of 336 steps and a horizon of 24, all of it would squeeze the forecast into a corner.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np

from tasks.common.plots import title_inches, wrap_title

PANEL_INCHES = 2.0
WIDTH_INCHES = 9.0
POINTS = 9.0


def forecast_figure(
    histories: np.ndarray, futures: np.ndarray, forecasts: np.ndarray, title: str, panels: int = 4
) -> plt.Figure:
    """History, actual future and forecast for a few test windows spread over the test period.

    Args:
        histories: Target history per window, ``(windows, lookback)``, original units.
        futures: True next values per window, ``(windows, horizon)``.
        forecasts: Forecasts per window, ``(windows, horizon)``.
        title: The figure's title.
        panels: Windows drawn (fewer when there are fewer windows).

    Returns:
        The figure (the caller closes it).
    """
    panels = max(1, min(panels, len(histories)))
    lookback, horizon = histories.shape[1], futures.shape[1]
    shown = min(lookback, max(3 * horizon, 48))  # history steps drawn before the first forecast
    past, ahead = np.arange(-shown, 0), np.arange(horizon)
    marks = ("o", "x") if horizon <= 24 else (None, None)  # a one-step forecast is a point, not a line
    height = title_inches(title, WIDTH_INCHES) + panels * PANEL_INCHES + 0.9  # + legend and x label
    figure, axes = plt.subplots(
        panels, 1, figsize=(WIDTH_INCHES, height), sharex=True, layout="constrained", squeeze=False
    )
    windows = np.linspace(0, len(histories) - 1, panels).round().astype(int)
    for axis, index in zip(axes[:, 0], windows, strict=True):
        axis.plot(past, histories[index, -shown:], color="grey", label="history")
        axis.plot(ahead, futures[index], color="black", marker=marks[0], markersize=4, label="actual")
        axis.plot(
            ahead,
            forecasts[index],
            color="tab:red",
            linestyle="--",
            marker=marks[1],
            markersize=5,
            label="forecast",
        )
        axis.axvline(-0.5, color="0.6", linewidth=0.8)
        axis.set_title(f"test window {index}", fontsize=POINTS, loc="left")
        axis.tick_params(labelsize=POINTS)
        axis.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("time step (0 = first forecast step)", fontsize=POINTS)
    figure.supylabel("value", fontsize=POINTS)
    figure.legend(
        *axes[0, 0].get_legend_handles_labels(),
        loc="outside upper right",
        ncol=3,
        fontsize=POINTS,
        frameon=False,
    )
    figure.suptitle(wrap_title(title, WIDTH_INCHES - 3.0), fontsize=11, x=0.02, ha="left")
    return figure
