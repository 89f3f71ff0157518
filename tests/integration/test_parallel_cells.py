"""Cells or whole tasks shipped at once (``--parallel 2``, worker processes) score as one after another."""

import os
from contextlib import nullcontext

import pytest
from mlflow.tracking import MlflowClient
from process_state import ProcessState

from flows.config import ConfigError, load_profile
from flows.parallel_cells import check_parallel, shared_threads

pytestmark = pytest.mark.integration
TASK = "action_recognition"
PROFILE = """
cells: [rnn, gru]
quantize: null
tasks:
  action_recognition:
    data: {dataset: NATOPS, validation_fraction: 0.2}
    model: {embedding_dim: 8, hidden_size: 16, bidirectional: true, dropout: 0.1, pooling: mean}
    train: {learning_rate: 0.01, batch_size: 16, max_epochs: 6, patience: 6, num_threads: 1}
  forecasting:
    data: {limit: 1500, lookback: 56, horizon: 12, covariates: []}
    model: {embedding_dim: 8, hidden_size: 8, dropout: 0.0}
    train: {batch_size: 64, max_epochs: 2, patience: 2, num_threads: 1}
"""


def scores(result):
    metric = "test_macro_f1" if result["task"] == TASK else "test_mase"
    return {row["cell"]: (row["validation_score"], row[metric], row["epochs"]) for row in result["cells"]}


def pipeline_run(tmp_path, data_dir, parallel, tasks):
    from flows.console import api_for_workers
    from flows.pipeline import pipeline

    (tmp_path / "profile.yaml").write_text(PROFILE)
    name = f"{parallel}-{len(tasks)}"
    uri = f"sqlite:///{tmp_path / f'mlflow{name}.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    with api_for_workers() if parallel > 1 else nullcontext():
        result = pipeline(
            tasks=tasks,
            profile=str(tmp_path / "profile.yaml"),
            data_dir=str(data_dir),
            work_dir=str(tmp_path / f"work{name}"),
            parallel=parallel,
        )
    return result, MlflowClient(uri)


def test_cells_or_tasks_shipped_at_once_score_exactly_as_one_after_another(
    prefect_harness, shared_data_dir, tmp_path
):
    before = ProcessState.capture()
    try:
        one_by_one, _ = pipeline_run(tmp_path, shared_data_dir, 1, [TASK, "forecasting"])
        tasks_at_once, tasks_client = pipeline_run(tmp_path, shared_data_dir, 2, [TASK, "forecasting"])
        [at_once], client = pipeline_run(tmp_path, shared_data_dir, 2, [TASK])
    finally:
        before.restore(prefect=False)
    assert list(scores(at_once)) == ["rnn", "gru"]
    assert scores(at_once) == scores(one_by_one[0])
    assert [result["task"] for result in tasks_at_once] == [TASK, "forecasting"]
    assert list(map(scores, tasks_at_once)) == list(map(scores, one_by_one))
    assert all(result["promotion"]["promoted"] for result in tasks_at_once)
    assert len(tasks_client.search_model_versions("name = 'seqops-forecasting'")) == 2
    assert len(client.search_model_versions(f"name = 'seqops-{TASK}'")) == 2
    assert at_once["promotion"]["promoted"]
    children = client.search_runs(
        [client.get_run(at_once["parent_run_id"]).info.experiment_id],
        f"tags.mlflow.parentRunId = '{at_once['parent_run_id']}'",
    )
    assert sorted(run.data.params["cell"] for run in children) == ["gru", "rnn"]
    assert all(run.info.status == "FINISHED" and "val/macro_f1" in run.data.metrics for run in children)


def test_more_cells_at_once_than_cores_is_refused_before_any_work():
    profile = load_profile("smoke")
    with pytest.raises(ConfigError, match="this machine has"):
        check_parallel((os.cpu_count() or 1) + 1, profile, ["sentiment"])
    distributed = profile.model_copy(deep=True)
    distributed.tasks["sentiment"].train.devices = 2
    with pytest.raises(ConfigError, match=r"tasks\.sentiment\.train\.devices > 1"):
        check_parallel(2, distributed, ["sentiment"])


def test_trainings_at_once_share_the_cores_among_their_torch_threads(monkeypatch):
    profile = load_profile("default")
    assert profile.tasks["translation"].train.num_threads == 2
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert shared_threads(profile, "translation", 2).tasks["translation"].train.num_threads == 1
    assert profile.tasks["translation"].train.num_threads == 2  # the run's profile is left as it was
    monkeypatch.setattr(os, "cpu_count", lambda: 16)  # three at once, 5 cores each
    assert shared_threads(profile, "translation", 3).tasks["translation"].train.num_threads == 2
    unset = profile.model_copy(deep=True)
    unset.tasks["translation"].train.num_threads = 0
    assert shared_threads(unset, "translation", 3).tasks["translation"].train.num_threads == 5


def test_the_api_for_workers_leaves_the_api_it_found_running(prefect_harness):
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL

    from flows.console import api_for_workers

    found = PREFECT_API_URL.value()
    with api_for_workers():
        assert os.environ["PREFECT_API_URL"] == found  # worker processes reach the same API
    assert "PREFECT_API_URL" not in os.environ
    with get_client(sync_client=True) as client:
        assert client.api_healthcheck() is None  # still answering
