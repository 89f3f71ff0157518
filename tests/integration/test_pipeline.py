"""End to end: the Prefect pipeline on real SST-2 (a small subset), a real MLflow SQLite store,
then `seqops predict` from the registry and the pyfunc model in torch-free processes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
from mlflow.tracking import MlflowClient
from process_state import ProcessState

pytestmark = pytest.mark.integration
CELLS = ["rnn", "lstm", "gru"]


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory):
    """The module's MLflow store; the environment and MLflow's own settings are put back after it."""
    before = ProcessState.capture()
    uri = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    yield uri
    before.restore(prefect=False)  # Prefect's settings belong to the session's harness


@pytest.fixture(scope="module")
def pipeline_run(prefect_harness, tracking_uri, shared_data_dir, tmp_path_factory):
    """The smoke pipeline's result, its work folder and its Prefect flow run's id."""
    from flows.pipeline import pipeline

    work_dir = tmp_path_factory.mktemp("work")
    state = pipeline(
        tasks=["sentiment"],
        cells=CELLS,
        profile="smoke",
        data_dir=str(shared_data_dir),
        work_dir=str(work_dir),
        return_state=True,
    )
    return state.result()[0], work_dir, state.state_details.flow_run_id


def test_every_cell_is_trained_registered_and_a_champion_promoted(pipeline_run, tracking_uri):
    result, _, _ = pipeline_run
    assert [row["cell"] for row in result["cells"]] == CELLS
    assert all(row["status"] == "registered" and row["parity_error"] < 1e-4 for row in result["cells"])
    client = MlflowClient(tracking_uri)
    versions = client.search_model_versions("name='seqops-sentiment'")
    assert len(versions) == 3
    champion = client.get_model_version_by_alias("seqops-sentiment", "champion")
    best = max(result["cells"], key=lambda r: r["test_macro_f1"])
    assert champion.version == best["version"]
    for key in ("cell", "test_macro_f1", "test_accuracy", "parity_error", "data_fingerprint", "git_commit"):
        assert key in champion.tags
    assert result["promotion"]["promoted"] and result["promotion"]["reason"] == "no champion yet"


def test_bundles_carry_the_int8_decision_and_the_training_profile(pipeline_run, tracking_uri, tmp_path):
    from serving.bundle import resolve_bundle

    result, _, _ = pipeline_run
    lstm = next(row for row in result["cells"] if row["cell"] == "lstm")
    assert lstm["int8"] in {"accepted", "refused"} and "test_macro_f1_int8" in lstm
    bundle = resolve_bundle(f"models:/seqops-sentiment/{lstm['version']}", tmp_path)
    metadata = json.loads((bundle / "bundle.json").read_text())
    gate = metadata["int8"]
    assert gate["metric"] == "macro_f1" and gate["fp32"] == lstm["test_macro_f1"]
    assert gate["accepted"] == (lstm["int8"] == "accepted") == (bundle / "int8" / "model.onnx").is_file()
    assert (
        metadata["input_profile"]["length_mean"] > 1 and 0 <= metadata["input_profile"]["unknown_rate"] < 0.2
    )


def test_runs_hold_curves_plots_lineage_and_the_model(pipeline_run, tracking_uri):
    result, _, _ = pipeline_run
    client = MlflowClient(tracking_uri)
    parent = client.get_run(result["parent_run_id"])
    assert parent.data.tags["data_source"].startswith("data_dir")
    children = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    assert {c.data.params["cell"] for c in children} == set(CELLS)
    child = children[0]
    history = client.get_metric_history(child.info.run_id, "val/macro_f1")
    assert len(history) == 2 and [m.step for m in history] == [0, 1]  # smoke: 2 epochs, one point each
    assert {"train/loss", "val/loss", "train/learning_rate", "test/accuracy", "ship/train_seconds"} <= set(
        child.data.metrics
    )
    assert "confusion_matrix.png" in [a.path for a in client.list_artifacts(child.info.run_id)]
    assert {i.dataset.name for i in child.inputs.dataset_inputs} == {"train", "validation", "test"}


def test_prefect_recorded_the_flow_and_the_comparison_table(pipeline_run):
    from prefect import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    _, _, flow_run_id = pipeline_run
    with get_client(sync_client=True) as client:  # this run's, whatever other tests' pipelines left
        flow_run = client.read_flow_run(flow_run_id)
        (subflow,) = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[flow_run_id]))
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=["seqops-sentiment-cells"]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[subflow.id]),
            )
        )
    assert flow_run.name.startswith("sentiment ") and flow_run.state.is_completed()
    assert subflow.name == "sentiment" and {"profile:smoke", "task:sentiment", "cell:gru"} <= set(
        subflow.tags
    )
    (artifact,) = artifacts
    table = json.loads(artifact.data)
    assert [row["model"] for row in table] == [*CELLS, "baseline tfidf_logreg"]
    assert list(table[0])[:2] == ["model", "macro_f1 ★"] and "/#/experiments/" in table[0]["MLflow run"]


@pytest.fixture
def gate(pipeline_run, tracking_uri):
    """The registry client, the champion's version and another version; the champion is restored after."""
    client = MlflowClient(tracking_uri)
    before = client.get_model_version_by_alias("seqops-sentiment", "champion").version
    other = next(
        v.version for v in client.search_model_versions("name='seqops-sentiment'") if v.version != before
    )
    yield client, before, other
    client.set_registered_model_alias("seqops-sentiment", "champion", before)


def test_champion_scored_on_other_data_is_rescored_before_the_comparison(gate):
    from flows.champion import promote_best
    from tasks import get_task

    _, before, other = gate
    task = get_task("sentiment")
    rescored = []
    kept = promote_best.fn(
        task,
        [{"version": other, "test_macro_f1": 0.5}],
        ["model"],
        "new-data",
        lambda version: rescored.append(version) or 0.6,
    )
    assert rescored == [before] and not kept["promoted"] and "re-scored" in kept["reason"]

    def broken(version):
        raise RuntimeError("tokenizer mismatch")

    taken = promote_best.fn(task, [{"version": other, "test_macro_f1": 0.5}], ["model"], "new-data", broken)
    assert taken["promoted"] and "could not be scored" in taken["reason"]


def test_seqops_predict_from_the_registry(pipeline_run, tracking_uri, tmp_path):
    source = tmp_path / "in.jsonl"
    rows = [
        {"text": "a gorgeous , witty film"},
        {"text": ""},
        "not json",
        {"text": "tedious and flat"},
        {"txt": "wrong key"},
        {"text": ["a", "list"]},
    ]
    source.write_text("".join((json.dumps(r) if isinstance(r, dict) else r) + "\n" for r in rows))
    output = tmp_path / "out.parquet"
    env = {**os.environ, "MLFLOW_TRACKING_URI": tracking_uri}
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "predict",
            "--model",
            "models:/seqops-sentiment@champion",
            "--input",
            str(source),
            "--output",
            str(output),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert completed.returncode == 0, completed.stderr
    assert "6 rows: 2 predicted, 4 errors" in completed.stdout
    import pyarrow.parquet as pq

    predicted = pq.read_table(output).to_pylist()
    assert [p["row"] for p in predicted] == [1, 4]
    assert {p["label"] for p in predicted} <= {"negative", "positive"}
    errors = [json.loads(line) for line in (tmp_path / "out.parquet.errors.jsonl").read_text().splitlines()]
    assert [e["row"] for e in errors] == [2, 3, 5, 6]


def test_pyfunc_loads_from_the_registry_without_torch(pipeline_run, tracking_uri):
    script = textwrap.dedent("""
        import sys
        import mlflow.pyfunc
        import pandas as pd
        model = mlflow.pyfunc.load_model("models:/seqops-sentiment@champion")
        frame = model.predict(pd.DataFrame({"text": ["a wonderful film", "", "awful"]}))
        assert list(frame["label"].isna()) == [False, True, False], frame
        assert frame["error"].iloc[1] == "'text' is empty"
        assert "torch" not in sys.modules, "torch was imported"
        print("ok", list(frame["label"]))
    """)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.startswith("ok")


def test_seqops_models_lists_versions_and_the_champion(pipeline_run, tracking_uri):
    from typer.testing import CliRunner

    from flows.cli import app

    result = CliRunner().invoke(app, ["models", "--task", "sentiment"])
    assert result.exit_code == 0, result.output
    assert result.output.count("seqops-sentiment") == 3 and "champion" in result.output


def run_one_gru(task: str, data_dir, work_dir) -> tuple[dict, dict]:
    """The smoke pipeline for one task and one GRU; its result and the GRU's (registered) row."""
    from flows.pipeline import pipeline

    (result,) = pipeline(
        tasks=[task], cells=["gru"], profile="smoke", data_dir=str(data_dir), work_dir=str(work_dir)
    )
    (row,) = result["cells"]
    assert row["status"] == "registered" and row["parity_error"] < 1e-4
    return result, row


def test_forecasting_pipeline_logs_baselines_and_a_forecast_plot(
    prefect_harness, tracking_uri, shared_data_dir, tmp_path
):
    result, row = run_one_gru("forecasting", shared_data_dir, tmp_path)
    assert {"test_mase", "test_naive_mase", "test_seasonal_naive_mase", "test_smape"} <= set(row)
    client = MlflowClient(tracking_uri)
    assert "forecast_vs_actual.png" in [a.path for a in client.list_artifacts(row["run_id"])]
    champion = client.get_model_version_by_alias("seqops-forecasting", "champion")
    assert champion.tags["cell"] == "gru" and float(champion.tags["test_mase"]) == pytest.approx(
        row["test_mase"], abs=1e-4
    )


def test_action_recognition_pipeline_logs_a_named_confusion_matrix_and_class_recalls(
    prefect_harness, tracking_uri, shared_data_dir, tmp_path
):
    result, row = run_one_gru("action_recognition", shared_data_dir, tmp_path)
    assert {"test_accuracy", "test_macro_f1", "test_recall_i_have_command", "test_recall_lock_wings"} <= set(
        row
    )
    client = MlflowClient(tracking_uri)
    run = client.get_run(row["run_id"])
    assert "test/recall_spread_wings" in run.data.metrics
    assert "confusion_matrix.png" in [a.path for a in client.list_artifacts(row["run_id"])]
    champion = client.get_model_version_by_alias("seqops-action_recognition", "champion")
    assert champion.tags["cell"] == "gru"
    assert "natops" in client.get_run(result["parent_run_id"]).data.tags["data_source"]


def test_translation_pipeline_logs_bleu_attention_and_examples(
    prefect_harness, tracking_uri, shared_data_dir, tmp_path
):
    result, row = run_one_gru("translation", shared_data_dir, tmp_path)
    assert {"test_bleu", "test_chrf", "test_bleu_greedy", "test_chrf_greedy"} <= set(row)
    client = MlflowClient(tracking_uri)
    assert {"attention.png", "examples.json"} <= {a.path for a in client.list_artifacts(row["run_id"])}
    champion = client.get_model_version_by_alias("seqops-translation", "champion")
    assert champion.tags["cell"] == "gru" and "test_bleu" in champion.tags
    from serving.bundle import resolve_bundle

    bundle = resolve_bundle("models:/seqops-translation@champion", tmp_path / "download")
    assert {"encoder.onnx", "decoder_step.onnx", "source_tokenizer.json"} <= {
        p.name for p in bundle.iterdir()
    }


def test_the_classical_baseline_is_scored_beside_the_cells_and_never_promoted(pipeline_run, tracking_uri):
    result, _, _ = pipeline_run
    (baseline,) = result["baselines"]
    assert baseline["cell"] == "baseline tfidf_logreg" and baseline["status"] == "baseline (not promoted)"
    assert 0.5 < baseline["test_macro_f1"] <= 1.0
    parent = MlflowClient(tracking_uri).get_run(result["parent_run_id"])
    assert parent.data.metrics["baseline/tfidf_logreg/macro_f1"] == baseline["test_macro_f1"]
    assert parent.data.tags["baseline_tfidf_logreg"].startswith("scored in")
    assert "baseline" not in result["promotion"].get("candidate_cell", "") and len(result["cells"]) == len(
        CELLS
    )
