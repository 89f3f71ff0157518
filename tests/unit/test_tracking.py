from collections.abc import Callable

import mlflow
import numpy as np
import pytest
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST
from mlflow.tracking import MlflowClient

import flows.retries
from flows.retries import TrackingUnavailable, with_retries
from flows.tracker import tracker
from tasks.common.plots import confusion_matrix_figure


def test_transient_failures_are_retried_until_success():
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection refused")
        return "ok"

    assert with_retries(flaky, "flaky call", attempts=4, backoff=0) == "ok"
    assert len(calls) == 3


def test_persistent_failure_names_the_call():
    with pytest.raises(RuntimeError, match=r"after 2 attempts \(register model\)"):
        with_retries(lambda: (_ for _ in ()).throw(OSError("down")), "register model", attempts=2, backoff=0)


def test_permanent_mlflow_errors_are_not_retried():
    calls = []

    def missing():
        calls.append(1)
        raise MlflowException("no such run", error_code=RESOURCE_DOES_NOT_EXIST)

    with pytest.raises(MlflowException):
        with_retries(missing, "get run", attempts=4, backoff=0)
    assert len(calls) == 1


def always_down(calls: list) -> Callable[[], None]:
    def call() -> None:
        calls.append(1)
        raise OSError("connection refused")

    return call


def test_the_environment_sets_how_often_and_how_patiently_calls_are_retried(monkeypatch):
    monkeypatch.setenv("SEQOPS_MLFLOW_ATTEMPTS", "4")
    monkeypatch.setenv("SEQOPS_MLFLOW_BACKOFF", "0.5")
    calls, waits = [], []
    monkeypatch.setattr(flows.retries.time, "sleep", waits.append)  # the waits, without waiting
    with pytest.raises(RuntimeError, match=r"after 4 attempts \(log metrics\)"):
        with_retries(always_down(calls), "log metrics")
    assert len(calls) == 4 and waits == [0.5, 1.0, 2.0]  # doubling, and none after the last attempt


def test_a_backoff_given_by_the_caller_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("SEQOPS_MLFLOW_BACKOFF", "0.5")
    calls, waits = [], []
    monkeypatch.setattr(flows.retries.time, "sleep", waits.append)
    with pytest.raises(RuntimeError, match=r"after 3 attempts"):
        with_retries(always_down(calls), "log metrics", attempts=3, backoff=0.25)
    assert len(calls) == 3 and waits == [0.25, 0.5]


def test_the_tracker_retries_each_call_and_names_it_when_it_gives_up(monkeypatch):
    monkeypatch.setenv("SEQOPS_MLFLOW_ATTEMPTS", "3")
    monkeypatch.setattr(flows.retries.time, "sleep", lambda seconds: None)
    calls, logged = [], []

    def flaky(metrics, step=None):
        calls.append(1)
        if len(calls) < 3:
            raise OSError("connection refused")
        logged.append((metrics, step))

    monkeypatch.setattr(mlflow, "log_metrics", flaky)
    tracker.log_metrics({"val_loss": 0.5}, step=2)
    assert len(calls) == 3 and logged == [({"val_loss": 0.5}, 2)]
    calls.clear()
    monkeypatch.setattr(mlflow, "log_metrics", lambda metrics, step=None: always_down(calls)())
    with pytest.raises(
        TrackingUnavailable, match=r"after 3 attempts \(log metrics a, b, c \(\+1\) at step 7\)"
    ):
        tracker.log_metrics({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0}, step=7)
    assert len(calls) == 3


def test_the_tracker_does_not_retry_what_a_retry_cannot_fix(monkeypatch):
    calls = []

    def missing(client, name, alias, version):
        calls.append(name)
        raise MlflowException(f"no model {name}", error_code=RESOURCE_DOES_NOT_EXIST)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", missing)
    with pytest.raises(MlflowException, match="no model seqops-x"):
        tracker.set_registered_model_alias("seqops-x", "champion", "3")
    assert calls == ["seqops-x"]


def test_confusion_matrix_figure_labels_axes(tmp_path):
    figure = confusion_matrix_figure(np.array([[5, 1], [2, 7]]), ["negative", "positive"], "t")
    axes = figure.axes[0]
    assert [t.get_text() for t in axes.get_xticklabels()] == ["negative", "positive"]
    assert sorted(t.get_text() for t in axes.texts) == ["1", "2", "5", "7"]
    figure.savefig(tmp_path / "cm.png")
    assert (tmp_path / "cm.png").stat().st_size > 1000
