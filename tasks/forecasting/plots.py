"""Forecasting's diagnostic plot: history, actual future and forecast for a few test windows."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import numpy as np


def forecast_figure(
    histories: np.ndarray, futures: np.ndarray, forecasts: np.ndarray, title: str, panels: int = 4
) -> plt.Figure:
    """History, actual future and forecast for a few test windows spread over the test period.

    Args:
        histories: Target history per window, ``(windows, lookback)``, original units.
        futures: True next values per window, ``(windows, horizon)``.
        forecasts: Forecasts per window, ``(windows, horizon)``.
        title: The figure's title.
        panels: Windows drawn.

    Returns:
        The figure (the caller closes it).
    """
    figure, axes = plt.subplots(panels, 1, figsize=(9, 2.2 * panels), sharex=True)
    lookback, horizon = histories.shape[1], futures.shape[1]
    for axis, index in zip(axes, np.linspace(0, len(histories) - 1, panels).astype(int), strict=True):
        axis.plot(range(lookback), histories[index], color="grey", label="history")
        axis.plot(range(lookback, lookback + horizon), futures[index], color="black", label="actual")
        axis.plot(range(lookback, lookback + horizon), forecasts[index], color="tab:red", label="forecast")
        axis.set_ylabel(f"window {index}")
    axes[0].legend(loc="upper left", ncol=3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("time step")
    figure.tight_layout()
    return figure
