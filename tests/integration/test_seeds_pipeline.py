"""`seeds: K` in a profile, end to end: each cell trained K times in nested runs, mean ± standard deviation
on test in MLflow and in the CLI table, and the seed best on validation registered and gated."""

import os

import pytest
from mlflow.tracking import MlflowClient
from process_state import ProcessState

from flows.tables import summary_tables

pytestmark = pytest.mark.integration
PROFILE = """
seeds: 3
cells: [gru]
tasks:
  sentiment:
    data: {limit: 300, tokenizer: word, vocab_size: 1000, min_frequency: 1, max_length: 24}
    model: {embedding_dim: 8, hidden_size: 8, dropout: 0.0}
    train: {batch_size: 32, max_epochs: 2, patience: 2, seed: 5}
"""


@pytest.fixture(scope="module")
def seeded_run(prefect_harness, shared_data_dir, tmp_path_factory):
    """The pipeline's result with three seeds, and its MLflow client."""
    from flows.pipeline import pipeline

    before = ProcessState.capture()
    root = tmp_path_factory.mktemp("seeds")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    (root / "seeds.yaml").write_text(PROFILE)
    try:
        result = pipeline(
            profile=str(root / "seeds.yaml"), data_dir=str(shared_data_dir), work_dir=str(root / "work")
        )[0]
        yield result, MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    finally:
        before.restore(prefect=False)


def test_each_seed_is_a_nested_run_and_the_cell_reports_their_spread(seeded_run):
    result, client = seeded_run
    (row,) = result["cells"]
    assert row["seeds"] == 3 and row["status"] == "registered"
    experiment = client.get_experiment_by_name("seqops-sentiment")
    runs = client.search_runs([experiment.experiment_id])
    cell = next(r for r in runs if r.info.run_name == "sentiment-gru")
    seeds = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == cell.info.run_id]
    assert sorted(r.info.run_name for r in seeds) == [f"sentiment-gru-seed{s}" for s in (5, 6, 7)]
    scores = [r.data.metrics["test/macro_f1"] for r in seeds]
    mean = sum(scores) / 3
    std = (sum((s - mean) ** 2 for s in scores) / 2) ** 0.5
    assert cell.data.metrics["test/macro_f1_mean"] == pytest.approx(mean)
    assert cell.data.metrics["test/macro_f1_std"] == pytest.approx(std)
    assert row["test_macro_f1_mean"] == pytest.approx(mean)

    chosen = max(seeds, key=lambda r: r.data.metrics["val/best_macro_f1"])
    assert row["run_id"] == chosen.info.run_id and cell.data.tags["selected_run"] == chosen.info.run_id
    version = client.get_model_version("seqops-sentiment", row["version"])
    assert version.run_id == chosen.info.run_id and version.tags["seeds"] == "3"
    assert float(version.tags["test_macro_f1"]) == chosen.data.metrics["test/macro_f1"]  # one model's score


def test_the_gate_promotes_the_registered_seed_on_its_own_score_and_the_table_shows_the_spread(seeded_run):
    result, _ = seeded_run
    (row,) = result["cells"]
    assert result["promotion"]["promoted"] and result["promotion"]["candidate"] == row["test_macro_f1"]
    (table,) = summary_tables([result])
    headers = [column.header for column in table.columns]
    assert headers[:2] == ["cell", "seeds"]
    macro_f1 = list(table.columns[headers.index("macro_f1")].cells)[0]
    assert macro_f1 == f"{row['test_macro_f1_mean']:.4g} ± {row['test_macro_f1_std']:.2g}"
    assert "mean ± sd over seeds" in table.caption
