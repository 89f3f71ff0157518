"""What runs, versions and Prefect artifacts say, from their building blocks (no pipeline run)."""

import os
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from flows.artifacts import decision_markdown, results_table
from flows.cell_tracking import cell_params, learning_curves_figure, shipping_metrics
from flows.config import load_profile
from flows.lineage import dataset_source, split_digest
from flows.links import CLASSIC, runs_view_link
from flows.model_card import model_card
from flows.parent_run import runs_view
from flows.tables import promotion_headline
from flows.tracking import curve_name, git_commit, output_signature
from tasks import PreparedData, get_task

ROW = {
    "cell": "gru",
    "seed": 42,
    "epochs": 7,
    "train_seconds": 12.3,
    "test_macro_f1": 0.81234,
    "test_accuracy": 0.8125,
    "onnx_kb": 96.1,
    "parity_error": 2e-7,
    "ms_per_row": 0.0421,
    "int8": "refused",
    "version": "3",
    "run_id": "abc",
    "status": "registered",
}
BASELINE = {"cell": "baseline tfidf_logreg", "test_macro_f1": 0.8161, "train_seconds": 3.5}


def test_lightning_metric_names_become_chart_sections_by_stage():
    assert curve_name("train_loss") == "train/loss"
    assert curve_name("val_macro_f1") == "val/macro_f1"
    assert curve_name("learning_rate") == "train/learning_rate"


def test_test_scores_and_shipping_facts_are_named_by_group_and_nothing_else_is_logged():
    metrics = shipping_metrics(ROW | {"gradient_flow": {"x": 1}, "status": "registered"})
    assert metrics["test/macro_f1"] == ROW["test_macro_f1"] and metrics["ship/onnx_kb"] == 96.1
    assert {key.split("/")[0] for key in metrics} == {"test", "ship"}


def test_a_classifier_run_logs_no_regression_loss_and_a_forecaster_no_label_smoothing():
    profile = load_profile("smoke")
    sentiment = cell_params(get_task("sentiment"), profile.tasks["sentiment"], "gru", "smoke")
    forecasting = cell_params(get_task("forecasting"), profile.tasks["forecasting"], "gru", "smoke")
    assert "train.loss" not in sentiment and "train.label_smoothing" not in sentiment
    assert forecasting["train.loss"] in ("mse", "mae") and "train.label_smoothing" not in forecasting
    assert sentiment["model.cell"] == "gru" and "train.learning_rate" in sentiment


def test_train_and_validation_curves_share_one_panel_per_quantity():
    history = [
        {"epoch": e, "train/loss": 1 / (e + 1), "val/loss": 1.2 / (e + 1), "val/macro_f1": 0.5 + e / 10}
        for e in range(4)
    ]
    figure = learning_curves_figure(history, "sentiment gru: learning curves")
    loss, f1 = (axis for axis in figure.axes if axis.get_visible())
    assert loss.get_title() == "loss" and [line.get_label() for line in loss.lines] == [
        "training",
        "validation",
    ]
    assert f1.get_title() == "macro f1" and [line.get_label() for line in f1.lines] == ["validation"]


def test_the_signature_describes_the_predictions_and_leaves_judging_inputs_to_the_codec():
    rows = pd.DataFrame([{"text": "a fine film", "id": 1}])
    signature = output_signature(rows, pd.DataFrame([{"label": "positive", "probability": 0.9}]))
    assert signature.inputs is None  # MLflow would drop unnamed columns and reject mistyped batches
    assert [c.name for c in signature.outputs.inputs] == ["label", "probability"]


def test_datasets_are_logged_with_their_real_source_type(tmp_path):
    assert dataset_source("hub stanfordnlp/sst2")._get_source_type() == "hugging_face"
    local = dataset_source(f"data_dir {tmp_path}/sst2")
    assert local._get_source_type() == "local" and local.to_dict()["uri"] == (tmp_path / "sst2").as_uri()
    assert dataset_source(f"files {tmp_path}/a.csv, {tmp_path}/b.csv").to_dict()["uri"].endswith("/a.csv")
    packaged = dataset_source("aeon bundled NATOPS")
    assert packaged._get_source_type() == "code" and "NATOPS" in packaged.to_json()


def test_each_split_has_a_digest_of_its_own():
    class Split:
        def __init__(self, content):
            self._fingerprint, self.num_rows = content, 10

    digests = {split_digest("fp", name, Split(name * 3)) for name in ("train", "validation", "test")}
    assert len(digests) == 3 and split_digest("fp", "test", Split("x")) == split_digest(
        "fp", "test", Split("x")
    )


def test_the_git_commit_is_the_code_s_own_wherever_the_command_runs(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[2]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
    monkeypatch.chdir(tmp_path)  # not a repository
    assert git_commit().removesuffix("+dirty") == head.stdout.strip()
    assert os.getcwd() == str(tmp_path)


@pytest.mark.parametrize(
    ("decision", "headline"),
    [
        (
            {"promoted": True, "candidate_version": "3", "champion_version": None},
            "promoted version 3: first champion",
        ),
        (
            {
                "promoted": True,
                "candidate_version": "4",
                "champion_version": "3",
                "reason": "f1 0.8 beats 0.7",
            },
            "promoted version 4 over version 3: f1 0.8 beats 0.7",
        ),
        (
            {
                "promoted": False,
                "candidate_version": "5",
                "champion_version": "4",
                "reason": "f1 0.6 does not beat 0.8",
            },
            "kept version 4: version 5 f1 0.6 does not beat 0.8",
        ),
        ({"promoted": False, "reason": "registration off"}, "not promoted: registration off"),
    ],
)
def test_the_champion_decision_reads_in_plain_words(decision, headline):
    assert promotion_headline(decision) == headline


def test_the_results_table_puts_the_promotion_metric_first_rounded_with_links(monkeypatch):
    monkeypatch.setenv("SEQOPS_MLFLOW_UI_URL", "http://mlflow.example:5000")
    table = results_table(get_task("sentiment"), [ROW, BASELINE], "7")
    assert list(table[0])[:2] == ["model", "macro_f1 ★"] and table[0]["macro_f1 ★"] == "0.8123"
    assert table[0]["MLflow run"] == "http://mlflow.example:5000/#/experiments/7/runs/abc?" + CLASSIC
    assert table[0]["registry"].endswith("/#/models/seqops-sentiment/versions/3?" + CLASSIC)
    assert table[1]["model"] == "baseline tfidf_logreg" and table[1]["MLflow run"] == ""


def test_the_decision_markdown_names_both_versions_and_scores():
    decision = {
        "metric": "macro_f1",
        "candidate_version": "4",
        "candidate": 0.83,
        "champion_version": "3",
        "champion": 0.81,
        "promoted": True,
        "reason": "macro_f1 0.8300 beats 0.8100",
    }
    text = decision_markdown(get_task("sentiment"), decision)
    assert text.startswith("## sentiment: promoted version 4 over version 3")
    assert f"/versions/4?{CLASSIC})" in text and "| 0.81 |" in text and "None" not in text


def test_the_model_card_shows_scores_beside_baselines_and_how_to_call_it():
    prepared = PreparedData(None, None, "data_dir /data/sst2", "fp123", {"train_rows": 7842.0})
    card = model_card(get_task("sentiment"), prepared, ROW, [BASELINE], {"model.cell": "gru"}, "champion")
    assert card.startswith("GRU, test macro_f1 0.8123 (baseline tfidf_logreg 0.8161): champion.")
    assert "\n# seqops-sentiment version 3: GRU\n" in card
    assert "| **macro_f1** (promotion, max) | 0.8123 | 0.8161 |" in card
    for text in ("fp123", "parity", "int8 variant: refused", "models:/seqops-sentiment/3", "Limitations"):
        assert text in card


def test_the_runs_view_opens_classic_best_first_with_the_scores_and_loss_curves_together():
    link = runs_view_link("2")
    assert link.endswith("/#/experiments/2/runs?workflowType=machine_learning&viewStateShareKey=seqops")
    view = runs_view(get_task("forecasting"))
    assert view["orderByKey"] == "metrics.`test/mase`" and view["orderByAsc"] is True  # lower is better
    assert view["selectedColumns"][0] == "metrics.`test/mase`" and "params.`cell`" in view["selectedColumns"]
    (chart,) = view["compareRunCharts"]
    assert chart["selectedMetricKeys"] == ["train/loss", "val/loss"]
