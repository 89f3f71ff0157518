"""Prefect retries data preparation after a transient error, and not after one a retry cannot fix."""

import pytest
from prefect import flow

from flows.task_run import prepare_data
from tasks import DataSourceError, get_task


class FlakyPrepare:
    """``Task.prepare`` failing with ``error`` on the first ``failures`` calls, then the real one."""

    def __init__(self, error: Exception, failures: int):
        self.real = get_task("sentiment").prepare
        self.error, self.failures, self.calls = error, failures, 0

    def __call__(self, config):
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.real(config)


@flow
def prepare_flow(config):
    return prepare_data.with_options(retry_delay_seconds=0)("sentiment", config)


def sentiment_config(data_dir, cache_dir):
    return get_task("sentiment").config(data_dir=data_dir, cache_dir=cache_dir, min_frequency=1)


def test_a_transient_error_is_retried(prefect_harness, synthetic_data_dir, tmp_path, monkeypatch):
    flaky = FlakyPrepare(ConnectionError("connection reset by peer"), failures=1)
    monkeypatch.setattr(get_task("sentiment"), "prepare", flaky)
    prepared = prepare_flow(sentiment_config(synthetic_data_dir, tmp_path))
    assert flaky.calls == 2 and len(prepared.splits["train"]) > 0


def test_an_error_retries_cannot_fix_fails_at_once(
    prefect_harness, synthetic_data_dir, tmp_path, monkeypatch
):
    flaky = FlakyPrepare(DataSourceError("no sst2 folder under /nowhere"), failures=3)
    monkeypatch.setattr(get_task("sentiment"), "prepare", flaky)
    with pytest.raises(DataSourceError, match="no sst2 folder"):
        prepare_flow(sentiment_config(synthetic_data_dir, tmp_path))
    assert flaky.calls == 1


def test_retries_give_up_after_the_configured_attempts(
    prefect_harness, synthetic_data_dir, tmp_path, monkeypatch
):
    flaky = FlakyPrepare(TimeoutError("read timed out"), failures=5)
    monkeypatch.setattr(get_task("sentiment"), "prepare", flaky)
    with pytest.raises(TimeoutError):
        prepare_flow(sentiment_config(synthetic_data_dir, tmp_path))
    assert flaky.calls == 3  # the first attempt and prepare_data's two retries
