"""Forecast accuracy and the naive baselines every forecast is compared with."""

from __future__ import annotations

import numpy as np


def naive_forecast(histories: np.ndarray, horizon: int) -> np.ndarray:
    """Repeat each history's last value ``horizon`` times."""
    return np.repeat(histories[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(histories: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Repeat each history's last full season: step ``h`` takes the value ``season`` steps before it."""
    if histories.shape[1] < season:
        raise ValueError(f"seasonal-naive needs a history of at least one season ({season} steps)")
    last_season = histories[:, histories.shape[1] - season :]
    return last_season[:, np.arange(horizon) % season]


def seasonal_mae(series: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal-naive forecast: the MASE denominator."""
    return float(np.mean(np.abs(series[season:] - series[:-season])))


def forecast_scores(
    forecast: np.ndarray, actual: np.ndarray, std: float, mase_scale: float
) -> dict[str, float]:
    """MSE, MAE and RMSE on z-scored values; sMAPE (%) and MASE on original units.

    Args:
        forecast: Forecasts in original units, shape ``(windows, horizon)``.
        actual: True values in original units, same shape.
        std: Training standard deviation of the target.
        mase_scale: In-sample seasonal-naive MAE on the training target.

    Returns:
        ``mse``, ``mae``, ``rmse``, ``smape`` and ``mase``.
    """
    error_z = (forecast - actual) / std
    denominator = np.abs(forecast) + np.abs(actual)
    smape = np.where(
        denominator > 0, 2 * np.abs(forecast - actual) / np.where(denominator > 0, denominator, 1), 0
    )
    mse = float(np.mean(error_z**2))
    return {
        "mse": mse,
        "mae": float(np.mean(np.abs(error_z))),
        "rmse": mse**0.5,
        "smape": float(100 * np.mean(smape)),
        "mase": float(np.mean(np.abs(forecast - actual)) / mase_scale),
    }
