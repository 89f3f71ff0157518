"""Where forecasting's series come from: a user's CSV, the local ETTh1 copy, the Hub, or statsmodels' CO2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks.common.base import lazy_module
from tasks.common.errors import DataSourceError
from tasks.common.sources import load_from_hub
from tasks.forecasting.config import ForecastingConfig

pd = lazy_module("pandas")


def frames(config: ForecastingConfig) -> list[tuple[str, Any]]:
    """The places a series may come from, in the order they are tried: ``(description, loader)``."""

    def read(path: Path, required: bool) -> pd.DataFrame | None:
        if path.is_file():
            return pd.read_csv(path)
        if required:
            raise DataSourceError(f"file not found: {path}")
        return None

    def hub() -> pd.DataFrame | None:
        return (
            load_from_hub(config.hub_id, "set data_dir or csv_file")["train"].to_pandas()
            if config.use_hub
            else None
        )

    def co2() -> pd.DataFrame:
        from statsmodels.datasets import co2 as co2_data

        frame = co2_data.load_pandas().data
        return frame.rename_axis("date").reset_index()

    return [
        (
            f"file {config.csv_file}",
            lambda: read(config.csv_file, required=True) if config.csv_file else None,
        ),
        (
            f"data_dir {config.data_dir}/ett/ETTh1.csv",
            lambda: read(config.data_dir / "ett" / "ETTh1.csv", required=False) if config.data_dir else None,
        ),
        (f"hub {config.hub_id}", hub),
        ("statsmodels co2 (weekly)", co2),
    ]
