"""The forecaster's codec: histories scaled into model inputs, forecasts back into original units."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from pydantic import Field, PositiveFloat
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before Python 3.12

from tasks.common.base import JsonCodec
from tasks.common.errors import InvalidRow
from tasks.common.steps import parse_steps


@dataclass
class ForecastReferences:
    """True futures of test windows, with what scoring them needs."""

    histories: np.ndarray  # target history of each window, original units
    futures: np.ndarray  # true next ``horizon`` target values, original units
    season: int
    std: float  # training standard deviation of the target: errors are reported z-scored
    mase_scale: float  # training in-sample seasonal-naive MAE


class ForecastSettings(TypedDict):
    """What ``codec.json`` holds for a forecaster."""

    columns: Annotated[list[str], Field(min_length=1)]
    mean: list[float]
    std: list[PositiveFloat]
    lookback: Annotated[int, Field(ge=1)]
    horizon: Annotated[int, Field(ge=1)]
    season: Annotated[int, Field(ge=1)]
    mase_scale: float


class ForecastCodec(JsonCodec):
    """Scales histories into model inputs and forecasts back into original units."""

    settings_schema = ForecastSettings

    def __init__(
        self,
        columns: list[str],
        mean: list[float],
        std: list[float],
        lookback: int,
        horizon: int,
        season: int,
        mase_scale: float,
    ):
        self.columns, self.lookback, self.horizon, self.season = columns, lookback, horizon, season
        self.mean, self.std = np.array(mean, np.float32), np.array(std, np.float32)
        self.mase_scale = mase_scale
        if not len(columns) == len(mean) == len(std):
            raise ValueError(f"{len(columns)} columns but {len(mean)} means and {len(std)} deviations")

    def parse(self, row: dict[str, Any]) -> np.ndarray:
        """Validate a ``history`` (values per step, target first) and keep its last ``lookback`` steps."""
        steps = parse_steps(row, "history", len(self.columns), self.columns, (self.mean, self.std))
        if len(steps) < self.lookback:
            raise InvalidRow(f"history has {len(steps)} steps, needs at least {self.lookback}")
        return steps[-self.lookback :]

    def encode(self, items: list[np.ndarray]) -> dict[str, np.ndarray]:
        """Z-score histories into ``inputs`` (batch, lookback, columns) with full ``lengths``."""
        inputs = (np.stack(items) - self.mean) / self.std
        return {"inputs": inputs.astype(np.float32), "lengths": np.full(len(items), self.lookback, np.int64)}

    def decode(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Forecasts back in the target's original units."""
        forecast = outputs["forecast"] * self.std[0] + self.mean[0]
        return [{"forecast": [float(v) for v in row]} for row in forecast]

    def network_shape(self) -> dict[str, int]:
        """Input channels and forecast horizon."""
        return {"input_size": len(self.columns), "horizon": self.horizon}

    def settings(self) -> dict[str, Any]:
        """Scaler, columns and window settings (saved as ``codec.json``)."""
        return {
            "columns": self.columns,
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
            "lookback": self.lookback,
            "horizon": self.horizon,
            "season": self.season,
            "mase_scale": self.mase_scale,
        }
