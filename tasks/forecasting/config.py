"""Forecasting's data settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator

from tasks.common.base import DataConfig


class ForecastingConfig(DataConfig):
    """Data settings for forecasting.

    Attributes:
        csv_file: A user's CSV: a date column plus numeric columns.
        hub_id: Hugging Face Hub data set (a table with the same columns) used when ``use_hub`` is set.
        use_hub: Try the Hub before the offline CO2 default.
        date_column: Name of the timestamp column.
        target: Column to forecast.
        covariates: Extra input columns; ``None`` takes every other numeric column, ``[]`` is univariate.
        lookback: History steps the model reads.
        horizon: Steps forecast at once.
        season: Seasonal period for the seasonal-naive baseline and MASE; ``None`` infers it from the
            time step (24 hourly, 7 daily, 52 weekly, 12 monthly).
        split_lengths: Rows of train, validation and test; ``None``: 12/4/4 months for ETT, else 70/10/20%.
        stride: Step between consecutive training windows.
    """

    csv_file: Path | None = None
    hub_id: str = "ETDataset/ett"
    use_hub: bool = False
    date_column: str = "date"
    target: str = "OT"
    covariates: list[str] | None = None
    lookback: int = Field(96, ge=2)
    horizon: int = Field(24, ge=1)
    season: int | None = Field(None, ge=1)
    split_lengths: list[int] | None = Field(None, min_length=3, max_length=3)
    stride: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _season_fits_lookback(self) -> ForecastingConfig:
        if self.season is not None and self.season > self.lookback:
            raise ValueError(f"season ({self.season}) must not exceed lookback ({self.lookback})")
        return self
