"""Data-parallel training on the CPU (two processes, gloo): a pipeline run completes, registers one
version from rank 0 alone, and scores like the single-process run; a killed fit resumes under DDP."""

import os
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from process_state import ProcessState

from models.config import ModelConfig, TrainConfig
from models.distributed import DistributedTrainingError
from models.train import train
from tasks import get_task

pytestmark = pytest.mark.integration
TASK = "action_recognition"
PROFILE = """
cells: [gru]
quantize: null
tasks:
  action_recognition:
    data: {{dataset: NATOPS, validation_fraction: 0.2}}
    model: {{embedding_dim: 16, hidden_size: 32, bidirectional: true, dropout: 0.0, pooling: mean}}
    train: {{learning_rate: 0.01, batch_size: 16, max_epochs: 25, patience: 25, num_threads: 1,
             accelerator: cpu, devices: {devices}}}
"""
TOLERANCE = 0.05  # macro-F1 on 180 test gestures: the same batches, but not the same dropout or sums


def pipeline_run(tmp_path: Path, data_dir: Path, devices: int) -> tuple[dict, MlflowClient]:
    """The pipeline on NATOPS with ``devices`` training processes, in a store of its own."""
    from flows.pipeline import pipeline

    profile = tmp_path / f"ddp{devices}.yaml"
    profile.write_text(PROFILE.format(devices=devices))
    uri = f"sqlite:///{tmp_path / f'mlflow{devices}.db'}"
    os.environ["MLFLOW_TRACKING_URI"] = uri
    result = pipeline(
        tasks=[TASK], profile=str(profile), data_dir=str(data_dir), work_dir=str(tmp_path / f"work{devices}")
    )
    return result[0], MlflowClient(uri)


def test_two_process_training_registers_one_version_scoring_like_one_process(
    prefect_harness, shared_data_dir, tmp_path
):
    before = ProcessState.capture()
    try:
        single, _ = pipeline_run(tmp_path, shared_data_dir, devices=1)
        parallel, client = pipeline_run(tmp_path, shared_data_dir, devices=2)
    finally:
        before.restore(prefect=False)
    [cell] = parallel["cells"]
    assert cell["status"] == "registered" and parallel["promotion"]["promoted"]
    versions = client.search_model_versions(f"name = 'seqops-{TASK}'")
    assert len(versions) == 1, "rank 1 must not log or register"
    runs = client.search_runs([client.get_experiment_by_name(f"seqops-{TASK}").experiment_id])
    assert len(runs) == 2  # the parent and rank 0's cell run
    curve = client.get_metric_history(cell["run_id"], "val/macro_f1")
    assert len(curve) == cell["epochs"] == 25  # one point per epoch, from rank 0 alone
    assert cell["test_macro_f1"] == pytest.approx(single["cells"][0]["test_macro_f1"], abs=TOLERANCE)
    assert cell["test_macro_f1"] > 0.6  # far above chance (1/6): the ranks did learn together
    assert not torch.distributed.is_initialized() and "LOCAL_RANK" not in os.environ
    assert mlflow.active_run() is None


@pytest.fixture(scope="module")
def natops(shared_data_dir, tmp_path_factory):
    task = get_task(TASK)
    cache = tmp_path_factory.mktemp("cache")
    return task.family, task.prepare(task.config(data_dir=shared_data_dir, cache_dir=cache, dataset="NATOPS"))


def test_a_data_parallel_fit_resumes_from_its_last_checkpoint(natops, tmp_path):
    family, prepared = natops
    model = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0)
    config = TrainConfig(batch_size=16, max_epochs=2, patience=5, num_threads=1, accelerator="cpu", devices=2)
    first = train(family, prepared, model, config, tmp_path)
    assert first.resumed_from_epoch is None and first.epochs == 2
    resumed_at = []
    more = config.model_copy(update={"max_epochs": 4})
    second = train(
        family, prepared, model, more, tmp_path, on_resume=lambda epoch, _: resumed_at.append(epoch)
    )
    assert resumed_at == [2] and second.resumed_from_epoch == 2 and second.epochs == 4
    assert next(second.network.parameters()).device.type == "cpu"


def test_a_failing_worker_is_reported_with_its_own_words(natops, tmp_path):
    family, prepared = natops
    model = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0)
    config = TrainConfig(batch_size=16, max_epochs=1, num_threads=1, accelerator="cpu", devices=2)
    (tmp_path / "models").mkdir()  # shadows seqops' models package in the worker's working directory
    (tmp_path / "models" / "ddp_worker.py").write_text("raise SystemExit('worker cannot start')\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(
            DistributedTrainingError, match="rank 1 of 2 exited with status 1:\nworker cannot start"
        ):
            train(family, prepared, model, config, tmp_path / "checkpoints")
    finally:
        os.chdir(cwd)
    assert not torch.distributed.is_initialized() and "WORLD_SIZE" not in os.environ
