"""Forecasting's statistical baseline: the Theta method (statsmodels), fitted on each window's history.

Like the networks, it sees only a window's ``lookback`` steps of the target (no covariates) and
forecasts ``horizon`` steps; it is scored by the task's own metrics on the test windows. Its
seasonality is removed additively (so series at or below zero work) when the history holds two
seasons (its autocorrelation test needs more than a window holds, so it is not run). It has no
setting to choose, so validation is not read.
"""

from __future__ import annotations

import warnings

import numpy as np

from tasks.common.base import PreparedData, Task
from tasks.common.hooks import BaselineSkipped

MAX_WINDOWS = 6_000  # about 10 ms per window here: a minute at most


def theta_forecasts(histories: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """Theta forecasts for every history, shape ``(windows, horizon)``, in the histories' units."""
    from statsmodels.tsa.forecasting.theta import ThetaModel

    deseasonalize = season > 1 and histories.shape[1] >= 2 * season
    forecasts = np.empty((len(histories), horizon))
    with warnings.catch_warnings():  # a flat window warns while its level is fitted
        warnings.simplefilter("ignore")
        for row, history in enumerate(histories):
            model = ThetaModel(
                history, period=season, deseasonalize=deseasonalize, use_test=False, method="additive"
            )
            forecasts[row] = model.fit().forecast(horizon)
    return forecasts


def theta(task: Task, prepared: PreparedData) -> dict[str, float]:
    """Test metrics of the Theta method.

    Raises:
        BaselineSkipped: When there are too many test windows to fit in a pipeline run.
    """
    split = prepared.splits["test"]
    if len(split) > MAX_WINDOWS:
        raise BaselineSkipped(f"{len(split):,} test windows, more than {MAX_WINDOWS:,}")
    _, references = task.references(split, prepared.codec)
    horizon = prepared.codec.horizon
    forecasts = theta_forecasts(references.histories, horizon, references.season)
    scores = task.metrics([{"forecast": f} for f in forecasts], references)
    # The naive forecasts' scores come with every scoring; every cell's row has them already.
    return {k: v for k, v in scores.items() if not k.startswith(("naive_", "seasonal_naive_"))}
