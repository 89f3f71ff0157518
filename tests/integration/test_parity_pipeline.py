"""Through the real Prefect pipeline: a cell whose export fails the parity check registers nothing, says why.

The sentiment GRU is exported as the folded graph with its first class's bias off by 1e-5: within
the default tolerance (1e-4), beyond this profile's 1e-6. So the run must both carry the profile's
tolerance down to the check and turn the refusal into a cell that is tagged and not registered.
"""

import re

import pytest
from mlflow.tracking import MlflowClient
from onnx import numpy_helper

import models.families.classifier.family as classifier_family

pytestmark = pytest.mark.integration
FAULT = 1e-5
PROFILE = """
cells: [gru]
parity_tolerance: 1.0e-6
quantize: null
tasks:
  sentiment:
    data: {limit: 400, tokenizer: word, vocab_size: 2000, min_frequency: 1, max_length: 32}
    model: {embedding_dim: 8, hidden_size: 8, dropout: 0.0}
    train: {batch_size: 32, max_epochs: 1, patience: 1, num_threads: 1}
"""


@pytest.fixture
def tracking_uri(tmp_path, monkeypatch):
    """A fresh SQLite MLflow store; MLflow's process-wide URI and experiment are put back after the test."""
    from mlflow.tracking import fluent
    from mlflow.tracking._tracking_service import utils

    monkeypatch.setattr(utils, "_tracking_uri", utils._tracking_uri)
    monkeypatch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def folded_graph_off_by_fault(monkeypatch) -> list[str]:
    """The folded graph's builder, with ``FAULT`` added to the first class's bias; returns its calls."""
    build, built = classifier_family.folded_classifier_graph, []

    def build_off_by_fault(network):
        model = build(network)
        (bias,) = [t for t in model.graph.initializer if t.name == "head_bias"]
        array = numpy_helper.to_array(bias).copy()
        array[0] += FAULT
        bias.CopyFrom(numpy_helper.from_array(array, "head_bias"))
        built.append(model.graph.name)
        return model

    monkeypatch.setattr(classifier_family, "folded_classifier_graph", build_off_by_fault)
    return built


def test_a_cell_failing_parity_is_tagged_and_nothing_is_registered(
    prefect_harness, tracking_uri, folded_graph_off_by_fault, synthetic_data_dir, tmp_path
):
    from flows.pipeline import pipeline

    (tmp_path / "profile.yaml").write_text(PROFILE)
    work_dir = tmp_path / "work"
    (result,) = pipeline(
        tasks=["sentiment"],
        profile=str(tmp_path / "profile.yaml"),
        data_dir=str(synthetic_data_dir),
        work_dir=str(work_dir),
    )
    assert folded_graph_off_by_fault == ["folded_gru_classifier"]  # the fault reached the export
    (row,) = result["cells"]
    assert row["cell"] == "gru"
    said = re.fullmatch(
        r"not registered: ONNX parity error (\S+) exceeds tolerance 1e-06 for model.onnx", row["status"]
    )
    assert said and float(said[1]) == pytest.approx(FAULT, rel=0.1)
    assert "version" not in row and "parity_error" not in row
    assert result["promotion"] == {"promoted": False, "reason": "no registered candidate"}

    client = MlflowClient(tracking_uri)
    assert client.search_registered_models() == [] and client.search_model_versions() == []
    run = client.get_run(row["run_id"])
    assert run.data.tags["parity"] == "failed" and "ship/parity_error" not in run.data.metrics
    assert client.search_logged_models([run.info.experiment_id]) == []  # not even logged as a model
    parent = client.get_run(result["parent_run_id"])
    assert parent.data.tags["promotion"] == "not promoted: no registered candidate"
    assert not list(work_dir.rglob("*.onnx"))  # the refused graph is gone
