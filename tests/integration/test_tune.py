"""`seqops tune` end to end: an Optuna study on SST-2 (a small subset), trials as Prefect tasks on two
Dask worker processes, the study in MLflow's SQLite database, resumed by a second invocation."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from flows.config import load_profile, resolve_run

pytestmark = pytest.mark.integration
SEQOPS = os.path.join(os.path.dirname(sys.executable), "seqops")
PROFILE = """
cells: [rnn, gru]
tasks:
  sentiment:
    data: {limit: 300, tokenizer: word, vocab_size: 1000, min_frequency: 1, max_length: 24}
    model: {embedding_dim: 8, hidden_size: 8, dropout: 0.0}
    train: {batch_size: 32, max_epochs: 3, patience: 3}
    search_space:
      model.hidden_size: {low: 4, high: 16}
      model.embedding_dim: null
      model.num_layers: null
      model.bidirectional: null
      train.weight_decay: null
"""


def seqops(args, root, data_dir):
    environment = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PREFECT_HOME": str(root / "prefect"),
    }
    environment.pop("PREFECT_API_URL", None)
    command = [SEQOPS, "tune", "--task", "sentiment", "--profile", "tune.yaml", "--data-dir", str(data_dir)]
    return subprocess.run(
        command + ["--work-dir", "work", *args],
        cwd=root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def study(tmp_path_factory, shared_data_dir):
    """A study of 2 trials on 2 workers, then the same study asked for 3: the second run adds one."""
    root = tmp_path_factory.mktemp("tune")
    (root / "tune.yaml").write_text(PROFILE)
    first = seqops(["--trials", "2", "--workers", "2", "--study", "s1"], root, shared_data_dir)
    assert first.returncode == 0, first.stderr[-3000:]
    second = seqops(["--trials", "3", "--workers", "2", "--study", "s1"], root, shared_data_dir)
    assert second.returncode == 0, second.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("seqops-sentiment")
    runs = client.search_runs([experiment.experiment_id])
    return root, first, second, client, runs


def test_trials_are_nested_runs_of_one_parent_that_a_second_invocation_resumes(study):
    _, first, second, _, runs = study
    parents = [r for r in runs if r.data.tags.get("seqops_kind") == "tune"]
    assert len(parents) == 1 and parents[0].data.tags["study"] == "s1"
    trials = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert sorted(r.data.tags["trial"] for r in trials) == ["0", "1", "2"]
    assert "holds 0 finished trials; running 2 more" in first.stderr + first.stdout
    assert "holds 2 finished trials; running 1 more" in second.stderr + second.stdout
    assert parents[0].data.metrics["trials_complete"] + parents[0].data.metrics.get("trials_pruned", 0) == 3
    first_two = [r for r in trials if r.data.tags["trial"] in ("0", "1")]
    assert len({r.data.tags["worker"] for r in first_two}) == 2  # one per Dask worker process
    for trial in trials:
        assert trial.data.params["model.cell"] in ("rnn", "gru")
        assert 4 <= int(trial.data.params["model.hidden_size"]) <= 16
        assert any(key.startswith("val/") for key in trial.data.metrics)  # its learning curves


def test_the_study_lives_in_the_tracking_database_beside_mlflows_tables(study):
    root, *_ = study
    with sqlite3.connect(root / "mlflow.db") as db:
        tables = {name for (name,) in db.execute("select name from sqlite_master where type='table'")}
        assert {"studies", "trials", "experiments", "runs", "model_versions"} <= tables
        states = db.execute(
            "select state from trials join studies using (study_id) where study_name = 's1'"
        ).fetchall()
    assert len(states) == 3


def test_selection_reads_validation_only_and_the_parent_holds_plots_and_the_best_profile(study):
    root, _, second, client, runs = study
    assert not any(key.startswith("test_") for run in runs for key in run.data.metrics)
    parent = next(r for r in runs if r.data.tags.get("seqops_kind") == "tune")
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"best_profile.yaml", "optimization_history.png", "search_space.json"} <= artifacts
    downloaded = client.download_artifacts(parent.info.run_id, "search_space.json", str(root))
    space = json.loads(Path(downloaded).read_text())
    assert space["model.hidden_size"] == {"low": 4, "high": 16} and "model.embedding_dim" not in space
    assert "model.cell" in space and "model.pooling" in space  # several cells; the task's own dimension

    best = parent.data.metrics["best_val_macro_f1"]
    trials = [r for r in runs if r.data.tags.get("trial_state") == "complete"]
    assert best == max(r.data.metrics["best_val_macro_f1"] for r in trials)
    path = root / "work" / "studies" / "s1.yaml"
    assert f"its settings as a profile: {path.relative_to(root)}" in " ".join(second.stdout.split())
    profile = load_profile(str(path))
    winner = next(r for r in trials if r.data.metrics["best_val_macro_f1"] == best)
    assert profile.cells == [winner.data.params["model.cell"]]
    assert profile.tasks["sentiment"].model.hidden_size == int(winner.data.params["model.hidden_size"])
    assert "search_space" not in yaml.safe_load(path.read_text())["tasks"]["sentiment"]
    resolve_run(str(path), None, None, str(root), str(root / "work"))  # `seqops pipeline --profile` takes it


def test_a_search_space_key_that_is_no_setting_fails_before_any_work(tmp_path, shared_data_dir):
    (tmp_path / "tune.yaml").write_text(PROFILE.replace("model.hidden_size: {low", "model.hidden: {low"))
    result = seqops(["--trials", "1"], tmp_path, shared_data_dir)
    assert result.returncode == 2
    fields = "'bidirectional', 'cell', 'dropout', 'embedding_dim', 'hidden_size', 'num_layers', 'options'"
    assert result.stderr.strip().splitlines() == [
        "configuration error: task 'sentiment': search_space.model.hidden: model has no field 'hidden'; "
        f"known: [{fields}, 'pooling']"
    ]
    assert not (tmp_path / "mlflow.db").exists()


def test_a_study_keeps_its_objective_and_refuses_another(study, shared_data_dir):
    root, *_ = study
    result = seqops(["--trials", "4", "--study", "s1", "--objective", "val_loss:min"], root, shared_data_dir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "configuration error: study 's1' optimises val_macro_f1:max, not val_loss:min; give another --study"
    )


def test_trials_run_on_a_cluster_given_by_its_scheduler_address(tmp_path, shared_data_dir):
    from distributed import LocalCluster

    (tmp_path / "tune.yaml").write_text(PROFILE.replace("cells: [rnn, gru]", "cells: [gru]"))
    workers_folder = Path.cwd() / "work"  # the cluster's workers run here, not in the command's folder
    existed = workers_folder.exists()
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = seqops(
            ["--trials", "1", "--scheduler", cluster.scheduler_address], tmp_path, shared_data_dir
        )
        assert result.returncode == 0, result.stderr[-3000:]
        ran = list(cluster.scheduler.task_prefixes)
        assert any("trial" in prefix for prefix in ran), ran  # the trial ran on that cluster
    assert "best: trial 0" in result.stdout
    assert workers_folder.exists() == existed  # the trial wrote its cache where the command said
