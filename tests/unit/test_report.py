"""The bake-off report, read from a real MLflow SQLite store filled through the MLflow API (no training)."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import mlflow
import pytest
from matplotlib.figure import Figure
from mlflow import MlflowClient
from process_state import ProcessState
from typer.testing import CliRunner

from flows.cli import app
from flows.report import ReportError, gather, write_report
from flows.report_html import summary

HOSTILE = '<script>alert("x")</script>'
runner = CliRunner()


def _figure(title: str) -> Figure:
    figure = Figure(figsize=(2, 1.5))
    axes = figure.subplots()
    axes.plot([0, 1, 2], [1, 0, 1])
    axes.set_title(title)
    return figure


def _cell(name: str, scores: dict[str, float], ship: dict[str, float], int8: str = "accepted") -> str:
    with mlflow.start_run(run_name=f"sentiment-{name}", nested=True) as run:
        mlflow.log_params({"cell": name, "model.hidden_size": 8})
        mlflow.log_metrics({f"test/{k}": v for k, v in scores.items()})
        mlflow.log_metrics({f"ship/{k}": v for k, v in ship.items()})
        mlflow.set_tags({"int8": int8, "int8_gate": f"int8 macro_f1 within tolerance ({name})"})
        return run.info.run_id


def fill_store(uri: str, artifacts: Path) -> dict[str, str]:
    """An older and a latest pipeline run of sentiment, a tuning study, three registered versions."""
    mlflow.set_tracking_uri(uri)
    MlflowClient().create_experiment("seqops-sentiment", artifact_location=artifacts.as_uri())
    mlflow.set_experiment("seqops-sentiment")
    ids = {}
    with mlflow.start_run(run_name="sentiment-old") as old:
        mlflow.set_tag("promotion", "no champion yet")
        ids["old_gru"] = _cell("gru", {"macro_f1": 0.70}, {"onnx_kb": 90.0})
    time.sleep(0.01)
    with mlflow.start_run(run_name="sentiment-latest") as parent:
        mlflow.set_tags({"promotion": "macro_f1 0.8190 beats 0.7000", "data_fingerprint": "fp-new"})
        mlflow.log_metrics({"baseline/tfidf_logreg/macro_f1": 0.816, "baseline/tfidf_logreg/accuracy": 0.82})
        mlflow.log_figure(_figure("data"), "data_lengths.png")
        ids["rnn"] = _cell(
            "rnn", {"macro_f1": 0.751, "accuracy": 0.76}, {"onnx_kb": 41.5, "ms_per_row": 0.02}
        )
        gru_scores = {"macro_f1": 0.819, "accuracy": 0.823, "macro_f1_int8": 0.812}
        ship = {"onnx_kb": 123.4, "ms_per_row": 0.057, "train_seconds": 61.2, "parity_error": 3.1e-6}
        with mlflow.start_run(run_name="sentiment-gru", nested=True) as gru:
            mlflow.log_params({"cell": "gru"})
            mlflow.log_metrics({f"test/{k}": v for k, v in gru_scores.items()})
            mlflow.log_metrics({f"ship/{k}": v for k, v in ship.items()})
            mlflow.set_tags({"int8": "refused", "int8_gate": "int8 macro_f1 0.8120 vs fp32 0.8190: too far"})
            mlflow.log_figure(_figure("confusion"), "confusion_matrix.png")
            mlflow.log_figure(_figure("curves"), "plots/learning_curves.png")
            ids["gru"] = gru.info.run_id
        with mlflow.start_run(run_name="sentiment-lstm", nested=True) as lstm:
            mlflow.log_params({"cell": "lstm"})
            mlflow.log_metrics({"test/macro_f1_mean": 0.805, "test/macro_f1_std": 0.004, "ship/seeds": 3})
            with mlflow.start_run(run_name="sentiment-lstm-seed43", nested=True) as seeded:
                mlflow.log_metrics(
                    {"test/macro_f1": 0.809, "test/macro_f1_int8": 0.808, "ship/onnx_kb": 150.0}
                )
                mlflow.log_figure(_figure("seed"), "gradient_flow.png")
                seed = seeded.info.run_id
            mlflow.set_tags({"selected_seed": 43, "selected_run": seed})
            ids["lstm"], ids["lstm_seed"] = lstm.info.run_id, seed
        ids["hostile"] = _cell(HOSTILE, {"macro_f1": 0.5}, {"onnx_kb": 1.0})
        ids["parent"] = parent.info.run_id
    with mlflow.start_run(run_name="tune sentiment-default"):
        mlflow.set_tag("seqops_kind", "tune")
    client = MlflowClient()
    client.create_registered_model("seqops-sentiment")
    for run_id, cell, score, fingerprint in (
        (ids["old_gru"], "gru", "0.7", "fp-old"),
        (ids["gru"], "gru", "0.819", "fp-new"),
        (ids["lstm_seed"], "lstm", "0.809", "fp-new"),
    ):
        tags = {"cell": cell, "test_macro_f1": score, "data_fingerprint": fingerprint, "run_id": run_id}
        client.create_model_version("seqops-sentiment", f"runs:/{run_id}/model", run_id=run_id, tags=tags)
    client.set_registered_model_alias("seqops-sentiment", "champion", "2")
    assert old.info.run_id != parent.info.run_id
    return ids


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, str]]:
    """The store, filled once for the module (SQLite's schema alone takes seconds); read-only after."""
    state = ProcessState.capture()
    folder = tmp_path_factory.mktemp("report-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    try:
        return uri, fill_store(uri, folder / "artifacts")
    finally:
        state.restore()


@pytest.fixture
def store(filled: tuple[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    uri, ids = filled
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    mlflow.set_tracking_uri(uri)
    return ids


def _page(tmp_path: Path) -> str:
    return write_report(tmp_path / "report.html", "sentiment").read_text()


def test_the_latest_pipeline_run_gives_the_cells_and_baselines_rows(store):
    (report,) = gather("sentiment")
    assert report.parent_run_id == store["parent"]
    assert report.columns[0] == "test_macro_f1"  # the promotion metric first
    rows = {row.name: row for row in report.rows}
    assert set(rows) == {"rnn", "gru", "lstm", HOSTILE, "baseline tfidf_logreg"}
    assert rows["gru"].version == "2" and rows["lstm"].version == "3" and rows["rnn"].version is None
    assert rows["gru"].int8_delta("macro_f1") == pytest.approx(-0.007)
    assert rows["lstm"].scores["test_macro_f1"] == 0.805 and rows["lstm"].spread["test_macro_f1"] == 0.004
    assert rows["lstm"].ship == {"onnx_kb": 150.0}  # the seed registered
    assert rows["lstm"].int8_delta("macro_f1") == pytest.approx(
        -0.001
    )  # the seed's int8 and fp32, not the mean
    assert [v.version for v in report.history] == ["1", "2", "3"] and report.champion.version == "2"


def test_the_page_holds_the_numbers_the_champion_and_the_baselines(store, tmp_path):
    page = _page(tmp_path)
    for shown in ("0.819", "0.751", "0.816", "123.4", "0.057", "61.2", "3.10e-06", "-0.007", "0.805 ± 0.004"):
        assert shown in page, shown
    assert '<td class="name">gru<span class="badge">champion</span>' in page
    assert "tfidf_logreg" in page and "badge base" in page
    assert "refused" in page and "too far" in page
    assert (
        "Champion: GRU (version 2), macro_f1 0.819; best baseline tfidf_logreg 0.816: +0.003, ahead" in page
    )
    assert "fp-old" in page and "macro_f1 ★" in page


def test_plots_are_embedded_as_png_data_and_nothing_is_fetched(store, tmp_path):
    page = _page(tmp_path)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert (
        len(images) == 4
    )  # the gru's two (one in a folder), the lstm's registered seed's, the pipeline run's
    assert all(base64.b64decode(data).startswith(b"\x89PNG") for data in images)
    assert "plots/learning_curves.png" in page and "data_lengths.png" in page and "gradient_flow.png" in page
    assert not re.search(r'(src|href)="(https?:)?//', page) and "<script" not in page


def test_a_hostile_cell_name_is_text_not_markup(store, tmp_path):
    page = _page(tmp_path)
    assert HOSTILE not in page
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


def test_runs_link_to_the_mlflow_ui_only_when_one_serves_the_store(store, tmp_path, monkeypatch):
    monkeypatch.delenv("SEQOPS_MLFLOW_UI_URL", raising=False)
    page = _page(tmp_path)
    assert 'href="http' not in page and f"<code>{store['gru']}</code>" in page
    monkeypatch.setenv("SEQOPS_MLFLOW_UI_URL", "http://mlflow.example")
    page = _page(tmp_path)
    assert (
        f'href="http://mlflow.example/#/experiments/1/runs/{store["gru"]}?workflowType=machine_learning"'
        in page
    )
    assert (
        'href="http://mlflow.example/#/models/seqops-sentiment/versions/2?workflowType=machine_learning"'
        in page
    )
    assert (
        'href="http://mlflow.example/#/experiments/1/runs?workflowType=machine_learning&amp;viewStateShareKey'
        in page
    )


def test_the_sentence_without_a_champion_names_the_best_cell(store):
    (report,) = gather("sentiment")
    report.history = []
    assert summary(report).startswith("No champion yet; best cell of this run: GRU, macro_f1 0.819")
    report.rows = [row for row in report.rows if not row.name.startswith("baseline")]
    assert "no classical baseline was scored" in summary(report)


def test_the_command_writes_the_page(store, tmp_path):
    output = tmp_path / "out.html"
    result = runner.invoke(app, ["report", "--task", "sentiment", "-o", str(output)])
    assert result.exit_code == 0, result.output
    assert "<html" in output.read_text() and not list(tmp_path.glob(".out.html.*"))


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (["--task", "speech"], "registered tasks"),
        (["--task", "translation"], "no pipeline run of task translation"),
        (["-o", "missing/report.html"], "cannot write in"),
        (["-o", "."], "is a folder"),
    ],
)
def test_a_bad_invocation_is_one_line_and_exit_status_2(store, tmp_path, monkeypatch, arguments, said):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", *arguments])
    assert result.exit_code == 2, result.output
    assert said in result.output and len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("report error:") and not (tmp_path / "report.html").exists()


def test_no_task_with_a_pipeline_run_says_to_run_the_pipeline_first(store, tmp_path, monkeypatch):
    monkeypatch.setattr("flows.report.task_names", lambda: ["translation", "forecasting"])
    with pytest.raises(ReportError, match="no pipeline run of any task in MLflow yet: run `seqops pipeline`"):
        write_report(tmp_path / "report.html")
    assert not (tmp_path / "report.html").exists()


def test_every_task_with_a_run_is_reported_by_default(store, tmp_path):
    page = write_report(tmp_path / "all.html").read_text()
    assert 'id="task-sentiment"' in page and "task-translation" not in page


def test_the_pipelines_call_creates_the_reports_folder(store, tmp_path):
    written = write_report(tmp_path / "work" / "reports" / "sentiment" / "report.html", task="sentiment")
    assert written.is_file() and 'id="task-sentiment"' in written.read_text()
