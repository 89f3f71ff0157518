"""Cells shipped at once (``--parallel 2``, Dask worker processes) score exactly as one after another."""

import os
from contextlib import nullcontext

import pytest
from mlflow.tracking import MlflowClient
from process_state import ProcessState

from flows.config import ConfigError, load_profile
from flows.parallel_cells import check_parallel

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
"""


def pipeline_run(tmp_path, data_dir, parallel):
    from flows.console import api_for_workers
    from flows.pipeline import pipeline

    (tmp_path / "profile.yaml").write_text(PROFILE)
    uri = f"sqlite:///{tmp_path / f'mlflow{parallel}.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    with api_for_workers() if parallel > 1 else nullcontext():
        result = pipeline(
            tasks=[TASK],
            profile=str(tmp_path / "profile.yaml"),
            data_dir=str(data_dir),
            work_dir=str(tmp_path / f"work{parallel}"),
            parallel=parallel,
        )
    return result[0], MlflowClient(uri)


def test_cells_shipped_at_once_score_exactly_as_one_after_another(prefect_harness, shared_data_dir, tmp_path):
    before = ProcessState.capture()
    try:
        one_by_one, _ = pipeline_run(tmp_path, shared_data_dir, parallel=1)
        at_once, client = pipeline_run(tmp_path, shared_data_dir, parallel=2)
    finally:
        before.restore(prefect=False)
    scores = {
        row["cell"]: (row["validation_score"], row["test_macro_f1"], row["epochs"])
        for row in at_once["cells"]
    }
    assert list(scores) == ["rnn", "gru"]
    assert scores == {
        row["cell"]: (row["validation_score"], row["test_macro_f1"], row["epochs"])
        for row in one_by_one["cells"]
    }
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
