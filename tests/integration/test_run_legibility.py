"""What a user reads in MLflow and Prefect after a pipeline run (real NATOPS, three cells, smoke settings):
grouped metrics, descriptions, model cards, the champion on its run, named models with signatures,
datasets with their real source, gradient-flow plots, named Prefect runs."""

import json
import os

import mlflow
import pytest
from mlflow.tracking import MlflowClient
from process_state import ProcessState

pytestmark = pytest.mark.integration
TASK, CELLS = "action_recognition", ["rnn", "lstm", "gru"]
MODEL = f"seqops-{TASK}"


@pytest.fixture(scope="module")
def run(prefect_harness, shared_data_dir, tmp_path_factory):
    """The smoke pipeline of one task's three cells in a store of its own; its result and flow run id."""
    before = ProcessState.capture()
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    mlflow.set_system_metrics_sampling_interval(1)  # smoke runs last seconds, not the default 10 s samples
    from flows.pipeline import pipeline

    work_dir = tmp_path_factory.mktemp("work")
    state = pipeline(
        tasks=[TASK],
        cells=CELLS,
        profile="smoke",
        data_dir=str(shared_data_dir),
        work_dir=str(work_dir),
        return_state=True,
    )
    yield state.result()[0], state.state_details.flow_run_id, MlflowClient(uri)
    mlflow.set_system_metrics_sampling_interval(None)
    before.restore(prefect=False)


def children(client, result):
    parent = client.get_run(result["parent_run_id"])
    found = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return parent, {child.data.params["cell"]: child for child in found}


def test_metrics_are_grouped_by_stage_and_bookkeeping_stays_out_of_the_curves(run):
    result, _, client = run
    parent, cells = children(client, result)
    for child in cells.values():
        groups = {key.split("/")[0] for key in child.data.metrics}
        assert groups <= {"train", "val", "test", "ship", "grad", "system"}, groups
        assert {"train/loss", "val/loss", "test/macro_f1", "ship/onnx_kb", "grad/clipped_steps"} <= set(
            child.data.metrics
        )
        assert any(key.startswith("system/cpu") for key in child.data.metrics)  # MLflow system metrics
    assert {key.split("/")[0] for key in parent.data.metrics} <= {"data", "baseline", "promotion"}


def test_runs_and_the_experiment_describe_themselves_in_words(run):
    result, _, client = run
    parent, cells = children(client, result)
    headline = parent.data.tags["promotion"]
    assert headline.startswith("promoted version ") and headline in parent.data.tags["mlflow.note.content"]
    assert "**GRU** on **action_recognition**" in cells["gru"].data.tags["mlflow.note.content"]
    experiment = client.get_experiment(parent.info.experiment_id)
    view = json.loads(experiment.tags["mlflow.sharedViewState.seqops"])  # what the runs view opens on
    assert view["orderByKey"] == "metrics.`test/macro_f1`" and "tags.`champion`" in view["selectedColumns"]
    assert "macro_f1" in experiment.tags["mlflow.note.content"]


def test_parameters_appear_only_where_they_apply(run):
    result, _, client = run
    _, cells = children(client, result)
    params = cells["lstm"].data.params
    assert "train.learning_rate" in params and "model.hidden_size" in params
    assert "train.loss" not in params and "train.label_smoothing" not in params  # regression-only, token-only


def test_the_champion_is_tagged_on_its_run_and_each_version_carries_a_model_card(run):
    result, _, client = run
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert client.get_run(champion.run_id).data.tags["champion"] == f"version {champion.version}"
    for row in result["cells"]:
        version = client.get_model_version(MODEL, row["version"])
        card = version.description
        assert card.startswith(f"{row['cell'].upper()}, test macro_f1 {row['test_macro_f1']:.4g} (baseline ")
        assert f"# {MODEL} version {row['version']}: {row['cell'].upper()}" in card
        for heading in ("Intended use", "Test scores", "Limitations", "How to call it", "baseline 1nn_dtw"):
            assert heading in card
        assert f"{row['test_macro_f1']:.4g}" in card
        assert client.download_artifacts(row["run_id"], "model_card.md")
    assert "champion" in client.get_registered_model(MODEL).description


def test_logged_models_are_named_with_a_signature_an_example_and_their_test_data(run):
    result, _, client = run
    _, cells = children(client, result)
    for cell, child in cells.items():
        (model,) = mlflow.search_logged_models(
            experiment_ids=[child.info.experiment_id],
            filter_string=f"source_run_id = '{child.info.run_id}'",
            output_format="list",
        )
        assert model.name == f"{TASK}-{cell}"
        info = mlflow.models.get_model_info(model.model_uri)
        assert info.signature.outputs is not None and info.saved_input_example_info is not None
        linked = {(m.key, m.dataset_name) for m in model.metrics}
        assert ("test/macro_f1", "test") in linked


def test_the_logged_model_turns_each_bad_row_into_an_error_row_and_drops_none(run):
    import pandas as pd

    result, _, _ = run
    model = mlflow.pyfunc.load_model(result["cells"][0]["model_uri"])
    rows = pd.DataFrame([{"valuez": [[1.0]]}, {"values": "not a list"}, {"values": 3, "id": 7}])
    predicted = model.predict(rows)  # MLflow checks no input schema that would drop rows or columns first
    assert len(predicted) == 3 and predicted["error"].notna().all()
    assert len(model.predict(["a sentence", "another"])) == 2


def test_datasets_name_their_real_source_their_size_and_a_digest_per_split(run):
    result, _, client = run
    _, cells = children(client, result)
    inputs = [i.dataset for i in cells["gru"].inputs.dataset_inputs]
    assert {d.name for d in inputs} == {"train", "validation", "test"}
    assert {d.source_type for d in inputs} == {"local"} and all("natops" in d.source for d in inputs)
    assert len({d.digest for d in inputs}) == 3
    for dataset in inputs:
        profile = json.loads(dataset.profile)
        assert profile["num_rows"] > 0 and profile["size_in_bytes"] > 0


def test_gradient_flow_is_logged_per_cell_and_compared_on_the_parent_run(run):
    result, _, client = run
    parent, cells = children(client, result)
    for child in cells.values():
        names = [a.path for a in client.list_artifacts(child.info.run_id)]
        assert {"gradient_flow.png", "gradient_flow.json", "learning_curves.png"} <= set(names)
    assert {"gradient_flow_cells.png", "report.html"} <= {
        a.path for a in client.list_artifacts(parent.info.run_id)
    }


def test_prefect_runs_are_named_after_task_and_cell_with_tags_and_a_subflow_per_task(run):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
        TaskRunFilter,
        TaskRunFilterFlowRunId,
    )

    _, flow_run_id, _ = run
    with get_client(sync_client=True) as prefect:
        top = prefect.read_flow_run(flow_run_id)
        (subflow,) = prefect.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        task_runs = prefect.read_task_runs(
            task_run_filter=TaskRunFilter(flow_run_id=TaskRunFilterFlowRunId(any_=[subflow.id]))
        )
    assert top.name.startswith(f"{TASK} ") and top.parameters["tasks"] == [TASK]
    assert subflow.name == TASK and {"profile:smoke", f"task:{TASK}", "cell:rnn"} <= set(subflow.tags)
    names = {task_run.name for task_run in task_runs}
    assert {
        f"{TASK}: prepare data",
        f"{TASK}/gru: train",
        f"{TASK}/gru: export ONNX",
        f"{TASK}/gru: evaluate",
    } <= names
    assert f"{TASK}: champion gate" in names
