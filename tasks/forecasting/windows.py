"""Forecasting's windows: the season of a series, sliding (history, future) windows, Arrow columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tasks.common.base import lazy_module

pd = lazy_module("pandas")


def infer_season(dates: pd.Series) -> int:
    """Seasonal period from the median time step: 24 hourly, 7 daily, 52 weekly, 12 monthly, else 1."""
    step = pd.to_datetime(dates).diff().median()
    for period, season in (
        (pd.Timedelta(hours=1), 24),
        (pd.Timedelta(days=1), 7),
        (pd.Timedelta(weeks=1), 52),
    ):
        if step == period:
            return season
    return 12 if pd.Timedelta(days=28) <= step <= pd.Timedelta(days=31) else 1


def windows(
    values: np.ndarray, lookback: int, horizon: int, stride: int, target: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Sliding (history, future) windows: histories ``(n, lookback, columns)``, futures ``(n, horizon)``."""
    starts = np.arange(0, len(values) - lookback - horizon + 1, stride)
    history_index = starts[:, None] + np.arange(lookback)
    future_index = starts[:, None] + lookback + np.arange(horizon)
    return values[history_index], values[future_index, target]


def nested_array(array: np.ndarray) -> pa.Array:
    """A float32 numpy array as a nested fixed-size Arrow list column (fast, no Python lists)."""
    column = pa.array(array.reshape(-1).astype(np.float32))
    for size in reversed(array.shape[1:]):
        column = pa.FixedSizeListArray.from_arrays(column, size)
    return column
