"""Time-series forecasting: direct multi-horizon forecasts of a target from a window of history.

ETTh1 (hourly, target ``OT``) is the reference data set; ``statsmodels``' weekly CO2 series is the
offline default when no file is configured. Scaling is fitted on the training rows only and saved
with the model, so served forecasts come back in original units.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from tasks.common.base import (
    PreparedData,
    Task,
    datasets,
    fingerprint,
    lazy_module,
    load_prepared,
    save_prepared,
)
from tasks.common.errors import DataSourceError
from tasks.common.hooks import Artifact, Evaluation, Figure
from tasks.common.sources import first_available
from tasks.forecasting.baseline import theta
from tasks.forecasting.codec import ForecastCodec, ForecastReferences
from tasks.forecasting.config import ForecastingConfig
from tasks.forecasting.metrics import forecast_scores, naive_forecast, seasonal_mae, seasonal_naive_forecast
from tasks.forecasting.readers import SERIES
from tasks.forecasting.sources import frames
from tasks.forecasting.windows import infer_season, nested_array, windows

pd = lazy_module("pandas")

ETT_SPLIT = [12 * 30 * 24, 4 * 30 * 24, 4 * 30 * 24]  # the usual 12/4/4 months of hourly rows
CACHE_VERSION = 1


class Forecasting(Task):
    """Direct multi-horizon forecasting of one target column."""

    name = "forecasting"
    family = "forecaster"
    config_model = ForecastingConfig
    promotion_metric = "mase"
    promotion_direction = "min"
    summary_metrics = ("mase", "mae", "mse", "rmse", "smape", "naive_mase", "seasonal_naive_mase")
    search_space = {
        "data.lookback": {"choices": [96, 168, 336]},
        "model.hidden_size": {"low": 16, "high": 256, "log": True},
        "model.num_layers": {"low": 1, "high": 2},
        "model.dropout": {"low": 0.0, "high": 0.4},
        "train.learning_rate": {"low": 1e-4, "high": 3e-3, "log": True},
        "train.loss": {"choices": ["mae", "mse"]},
    }
    readers = {"series": SERIES}

    def diagnostics(self, evaluation: Evaluation) -> list[Artifact]:
        """Forecast against actual values for four test windows spread over the test period."""
        from tasks.forecasting.plots import forecast_figure  # matplotlib only when plotting

        references = evaluation.references
        forecasts = np.array([p["forecast"] for p in evaluation.predictions])
        figure = forecast_figure(references.histories, references.futures, forecasts, evaluation.title)
        return [Figure("forecast_vs_actual.png", figure)]

    def prepare(self, config: ForecastingConfig) -> PreparedData:
        """Load, clean, split, scale and window the series (cached on disk)."""
        source, frame = first_available(frames(config))
        is_co2 = source.startswith("statsmodels")
        target = "co2" if is_co2 and config.target not in frame else config.target
        missing = {config.date_column, target} - set(frame.columns)
        if missing:
            raise DataSourceError(f"{source} lacks column(s) {sorted(missing)}; set date_column/target")
        covariates = config.covariates
        if covariates is None:
            numeric = frame.select_dtypes("number").columns
            covariates = [c for c in numeric if c not in {config.date_column, target}]
        unknown = sorted(set(covariates) - set(frame.columns))
        if unknown:
            raise DataSourceError(f"{source} has no column(s) {unknown}; columns: {list(frame.columns)}")
        columns = [target, *covariates]
        key = fingerprint(
            CACHE_VERSION,
            config.model_dump(exclude={"cache_dir", "data_dir"}),
            source,
            pd.util.hash_pandas_object(frame[columns], index=False).sum(),
        )
        cache = Path(config.cache_dir) / self.name / key
        return load_prepared(cache, self, source, key) or self._build(
            frame, columns, config, source, key, cache
        )

    def _build(
        self,
        frame: pd.DataFrame,
        columns: list[str],
        config: ForecastingConfig,
        source: str,
        key: str,
        cache: Path,
    ) -> PreparedData:
        values = frame[columns].apply(pd.to_numeric, errors="coerce")
        stats: dict[str, float] = {f"interpolated_{c}": int(values[c].isna().sum()) for c in columns}
        values = values.interpolate(limit_direction="both")
        empty = [c for c in columns if values[c].isna().any()]
        if empty:
            raise DataSourceError(f"column(s) {empty} hold no numeric values; choose numeric covariates")
        values = values.to_numpy(np.float64)
        if config.limit:
            values = values[: config.limit]
        lengths = config.split_lengths or (ETT_SPLIT if "ett" in source.lower() else None)
        if lengths is None:
            train_rows, val_rows = int(len(values) * 0.7), int(len(values) * 0.1)
            lengths = [train_rows, val_rows, len(values) - train_rows - val_rows]
        if config.limit:
            scale = len(values) / sum(lengths)
            lengths = [int(n * scale) for n in lengths]
        train_end, val_end = lengths[0], lengths[0] + lengths[1]
        bounds = {
            "train": (0, train_end),
            "validation": (train_end - config.lookback, val_end),
            "test": (val_end - config.lookback, val_end + lengths[2]),
        }
        season = config.season or infer_season(frame[config.date_column])
        if season > config.lookback:
            raise DataSourceError(
                f"the series' season ({season} steps) is longer than lookback "
                f"({config.lookback}); raise lookback or set season"
            )
        train = values[:train_end]
        codec = ForecastCodec(
            columns,
            train.mean(axis=0).tolist(),
            (train.std(axis=0) + 1e-8).tolist(),
            config.lookback,
            config.horizon,
            season,
            seasonal_mae(train[:, 0], season),
        )
        scaled = ((values - codec.mean) / codec.std).astype(np.float32)
        splits = {}
        for split, (start, end) in bounds.items():
            history, future = windows(
                scaled[start:end], config.lookback, config.horizon, config.stride if split == "train" else 1
            )
            if not len(history):
                raise DataSourceError(
                    f"{split} split ({end - start} rows) is shorter than lookback + horizon"
                )
            table = pa.table({"inputs": nested_array(history), "targets": nested_array(future)})
            splits[split] = datasets.Dataset(table)
            stats[f"windows_{split}"] = len(history)
        splits = datasets.DatasetDict(splits)
        stats.update({"columns": len(columns), "season": season, "mase_scale": codec.mase_scale})
        return save_prepared(PreparedData(splits, codec, source, key, stats), cache)

    def load_codec(self, directory: Path) -> ForecastCodec:
        """Load the scaler and window settings saved in a model bundle."""
        return ForecastCodec.load(directory)

    def references(
        self, split: datasets.Dataset, codec: ForecastCodec
    ) -> tuple[list[dict[str, Any]], ForecastReferences]:
        """Histories in original units (as a user would send them) and the true futures."""
        data = split.with_format("numpy")[:]
        histories = data["inputs"] * codec.std + codec.mean
        futures = data["targets"] * codec.std[0] + codec.mean[0]
        rows = [{"history": h.tolist()} for h in histories]
        return rows, ForecastReferences(
            histories[:, :, 0], futures, codec.season, float(codec.std[0]), codec.mase_scale
        )

    def baselines(self, prepared: PreparedData) -> dict[str, Callable[[], dict[str, float]]]:
        """The Theta method on each test window (``tasks.forecasting.baseline``).

        Naive and seasonal-naive forecasts are scored inside ``metrics``, beside every model.
        """
        return {"theta": partial(theta, self, prepared)}

    def metrics(self, predictions: list[dict[str, Any]], references: ForecastReferences) -> dict[str, float]:
        """The model's scores beside the naive and seasonal-naive baselines on the same windows."""
        forecast = np.array([p["forecast"] for p in predictions])
        horizon, refs = forecast.shape[1], references
        scores = forecast_scores(forecast, refs.futures, refs.std, refs.mase_scale)
        baselines = {
            "naive": naive_forecast(refs.histories, horizon),
            "seasonal_naive": seasonal_naive_forecast(refs.histories, horizon, refs.season),
        }
        for name, baseline in baselines.items():
            scores.update(
                {
                    f"{name}_{k}": v
                    for k, v in forecast_scores(baseline, refs.futures, refs.std, refs.mase_scale).items()
                }
            )
        return scores


TASK = Forecasting()
