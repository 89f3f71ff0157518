import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from task_models import SINE_AMPLITUDE, SINE_LEVEL, prepare_forecasting

from serving.batch import run_batch
from serving.predictor import Predictor
from tasks import InvalidRow, get_task
from tasks.forecasting.baseline import theta_forecasts
from tasks.forecasting.metrics import forecast_scores, naive_forecast, seasonal_naive_forecast


def test_windows_scaling_split_and_missing_values(sine_csv, tmp_path):
    task, prepared = prepare_forecasting(sine_csv, tmp_path)
    assert prepared.stats["interpolated_load"] == 3 and prepared.stats["season"] == 24
    assert prepared.codec.columns == ["load", "temp"]  # target first, then every other numeric column
    train = prepared.splits["train"].with_format("numpy")[:]
    assert train["inputs"].shape[1:] == (48, 2) and train["targets"].shape[1] == 12
    # 70/10/20 chronological split: 840 train rows -> 840 - 48 - 12 + 1 windows
    assert prepared.stats["windows_train"] == 781
    assert abs(float(train["inputs"][:, :, 0].mean())) < 0.1  # scaled with train statistics


def test_univariate_and_bad_settings(sine_csv, tmp_path):
    _, prepared = prepare_forecasting(sine_csv, tmp_path, covariates=[])
    assert prepared.codec.network_shape() == {"input_size": 1, "horizon": 12}
    with pytest.raises(ValueError, match="season"):
        get_task("forecasting").config(season=100, lookback=48)


def test_codec_rejects_bad_histories(sine_csv, tmp_path):
    _, prepared = prepare_forecasting(sine_csv, tmp_path)
    codec = prepared.codec
    good = [[1.0, 0.5]] * 50
    assert codec.parse({"history": good}).shape == (48, 2)  # longer histories keep the last lookback steps
    cases = [
        ({"history": good[:10]}, "needs at least 48"),
        ({"history": good[:-1] + [[1.0]]}, "expected 2"),
        ({"history": good[:-1] + [[float("nan"), 1.0]]}, "NaN"),
        ({"history": good[:-1] + [["x", 1.0]]}, "non-numeric"),
        ({}, "non-empty list"),
        ({"history": "1,2,3"}, "non-empty list"),
    ]
    for row, reason in cases:
        with pytest.raises(InvalidRow, match=reason):
            codec.parse(row)


def test_baselines_on_a_known_series():
    histories = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert naive_forecast(histories, 3).tolist() == [[4.0, 4.0, 4.0]]
    assert seasonal_naive_forecast(histories, 3, season=2).tolist() == [[3.0, 4.0, 3.0]]
    scores = forecast_scores(np.array([[2.0, 2.0]]), np.array([[1.0, 3.0]]), std=2.0, mase_scale=0.5)
    assert scores["mae"] == 0.5 and scores["mse"] == 0.25 and scores["mase"] == 2.0


def test_small_lstm_beats_the_naive_forecasts_through_onnx_in_original_units(forecasting_model):
    task, prepared, bundle = forecasting_model
    predictor = Predictor(bundle)
    rows, references = task.references(prepared.splits["test"], predictor.codec)
    predictions = predictor.predict_rows(rows)
    scores = task.metrics(predictions, references)
    assert scores["mase"] < scores["naive_mase"] and scores["mase"] < scores["seasonal_naive_mase"]
    forecasts = np.array([p["forecast"] for p in predictions])
    assert forecasts.shape == (len(rows), 12)
    # Original units: around the series' level, off the true futures by a fraction of its amplitude
    # (z-scored forecasts would sit around 0, and unscaled deviations would swing three times as far).
    assert np.all(np.abs(forecasts - SINE_LEVEL) < 2 * SINE_AMPLITUDE)
    assert np.abs(forecasts - references.futures).mean() < 0.25 * SINE_AMPLITUDE


def test_batch_job_forecasts_rows_and_reports_bad_histories(forecasting_model, sine_csv, tmp_path):
    _, _, bundle = forecasting_model
    series = pd.read_csv(sine_csv)[["load", "temp"]].interpolate().to_numpy().tolist()
    rows = [
        {"id": "a", "history": series[:60]},
        {"id": "short", "history": series[:5]},
        {"id": "nan", "history": series[:59] + [[float("nan"), 0.0]]},
        {"id": "b", "history": series[100:148]},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = run_batch(bundle, source, tmp_path / "out.jsonl", show_progress=False)
    assert (summary.predicted, summary.errors) == (2, 2)
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [o["id"] for o in out] == ["a", "b"] and all(len(o["forecast"]) == 12 for o in out)
    errors = (tmp_path / "out.jsonl.errors.jsonl").read_text()
    assert "needs at least 48" in errors and "NaN" in errors


def test_batch_job_reads_one_series_csv(forecasting_model, sine_csv, tmp_path):
    _, _, bundle = forecasting_model
    summary = run_batch(
        bundle, sine_csv.parent / "sine.csv", tmp_path / "out.parquet", show_progress=False, reader="series"
    )
    assert (summary.rows, summary.errors) == (
        1,
        1,
    )  # the file has gaps: NaN is rejected, never filled silently
    clean = tmp_path / "clean.csv"
    frame = pd.read_csv(sine_csv)
    frame.assign(load=frame["load"].interpolate()).to_csv(clean, index=False)
    summary = run_batch(bundle, clean, tmp_path / "out.parquet", show_progress=False, reader="series")
    assert (summary.predicted, summary.errors) == (1, 0)
    assert len(pq.read_table(tmp_path / "out.parquet").to_pylist()[0]["forecast"]) == 12


def test_offline_default_is_statsmodels_co2_with_gaps_counted(tmp_path):
    task = get_task("forecasting")
    prepared = task.prepare(task.config(cache_dir=tmp_path))
    assert prepared.source.startswith("statsmodels co2")
    assert prepared.stats["interpolated_co2"] == 59 and prepared.stats["season"] == 52
    assert prepared.codec.columns == ["co2"]
    assert prepared.stats["windows_test"] == 2284 - int(2284 * 0.7) - int(2284 * 0.1) - 24 + 1


def test_real_etth1_uses_the_usual_split(shared_data_dir, tmp_path):
    task = get_task("forecasting")
    prepared = task.prepare(task.config(data_dir=shared_data_dir, cache_dir=tmp_path, covariates=[]))
    assert prepared.stats["windows_train"] == 8640 - 96 - 24 + 1
    assert prepared.stats["windows_test"] == 2880 - 24 + 1


def test_configured_sources_that_fail_never_fall_back_to_other_data(sine_csv, tmp_path):
    from tasks import DataSourceError

    task = get_task("forecasting")
    with pytest.raises(DataSourceError, match="file not found"):
        task.prepare(task.config(csv_file=tmp_path / "typo.csv", cache_dir=tmp_path))
    with pytest.raises(DataSourceError, match=r"no column\(s\) \['humidity'\]"):
        prepare_forecasting(sine_csv, tmp_path, covariates=["humidity"])
    with pytest.raises(DataSourceError, match="season"):
        task.prepare(task.config(cache_dir=tmp_path, lookback=48))  # weekly CO2: season 52


def test_text_columns_are_not_taken_as_covariates(sine_csv, tmp_path):
    frame = pd.read_csv(sine_csv).assign(note="calm day")
    path = tmp_path / "with_text.csv"
    frame.to_csv(path, index=False)
    _, prepared = prepare_forecasting(path, tmp_path)
    assert prepared.codec.columns == ["load", "temp"]
    with pytest.raises(Exception, match="no numeric values"):
        prepare_forecasting(path, tmp_path / "c2", covariates=["note"])


def test_the_theta_baseline_follows_the_season_and_skips_too_many_windows(sine_csv, tmp_path, monkeypatch):
    from tasks.common.hooks import BaselineSkipped
    from tasks.forecasting import baseline

    task, prepared = prepare_forecasting(sine_csv, tmp_path)
    metrics = task.baselines(prepared)["theta"]()
    _, refs = task.references(prepared.splits["test"], prepared.codec)
    naive_forecasts = naive_forecast(refs.histories, prepared.codec.horizon)
    naive = forecast_scores(naive_forecasts, refs.futures, refs.std, refs.mase_scale)
    assert metrics["mase"] < 0.5 * naive["mase"]  # the daily sine is removed, then put back
    assert set(metrics) == {"mse", "mae", "rmse", "smape", "mase"}
    monkeypatch.setattr(baseline, "MAX_WINDOWS", 10)
    with pytest.raises(BaselineSkipped, match="more than 10"):
        task.baselines(prepared)["theta"]()


def test_theta_forecasts_histories_at_or_below_zero():
    histories = -np.abs(np.sin(np.arange(60) / 4))[None, :] - np.arange(60)[None, :] * 0.1
    forecast = theta_forecasts(histories, horizon=6, season=12)
    assert forecast.shape == (1, 6) and np.isfinite(forecast).all() and forecast[0, -1] < histories[0, -1]
