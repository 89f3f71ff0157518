"""A training killed mid-way resumes from its last Lightning checkpoint when the pipeline runs again."""

from __future__ import annotations

import os
import pathlib
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from flows.checkpoints import claim_checkpoints
from models.config import ModelConfig, TrainConfig
from models.train import train
from tasks import get_task

ROOT = Path(__file__).resolve().parents[2]
MAX_EPOCHS = 20  # patience as large: every run, killed or not, ends at exactly this epoch
FAMILY = get_task("sentiment").family  # the network family that learns sentiment_prepared
PROFILE = f"""
cells: [lstm]
quantize: null
tasks:
  sentiment:
    data: {{limit: 400, tokenizer: word, vocab_size: 2000, min_frequency: 1, max_length: 32}}
    model: {{embedding_dim: 8, hidden_size: 8, dropout: 0.0}}
    train: {{batch_size: 32, max_epochs: {MAX_EPOCHS}, patience: {MAX_EPOCHS}, num_threads: 1}}
"""


def start_pipeline(tmp_path: Path, data_dir: Path, log: Path) -> subprocess.Popen:
    """``seqops train`` in a subprocess, against the session's Prefect server (none of its own to start)."""
    from prefect.settings import PREFECT_API_URL

    (tmp_path / "profile.yaml").write_text(PROFILE)
    command = [sys.executable, "-m", "flows.cli", "train", "--task", "sentiment", "--cell", "lstm"]
    command += ["--profile", str(tmp_path / "profile.yaml"), "--data-dir", str(data_dir)]
    command += ["--work-dir", str(tmp_path / "work")]
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
    }
    # A session of its own, so that the kill takes whatever the run started with it.
    with log.open("w") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: subprocess.Popen) -> None:
    """SIGKILL a pipeline run's whole session (no-op once it has exited and been reaped)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def checkpoint_epoch(work: Path, seen: dict[int, int]) -> int:
    """The epoch of the ``last.ckpt`` under the work folder, or -1 (read only when it changed)."""
    for last in (work / "checkpoints").glob("*/*/last.ckpt"):
        try:
            changed = last.stat().st_mtime_ns
            if changed not in seen:
                seen[changed] = int(torch.load(last, weights_only=True, map_location="cpu")["epoch"])
            return seen[changed]
        except (OSError, RuntimeError, EOFError):  # replaced while we read it
            pass
    return -1


def test_killed_pipeline_resumes_from_its_last_checkpoint(
    prefect_harness, tmp_path: Path, synthetic_data_dir: Path
) -> None:
    from mlflow.tracking import MlflowClient

    work = tmp_path / "work"
    killed = start_pipeline(tmp_path, synthetic_data_dir, tmp_path / "killed.log")
    try:
        deadline, seen = time.monotonic() + 150, {}
        while (epoch := checkpoint_epoch(work, seen)) < 2:
            assert killed.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint of epoch 2 in time"
            time.sleep(0.05)
    finally:
        stop(killed)
    assert list((work / "checkpoints" / "sentiment").glob("lstm-*/last.ckpt")), "kill left no checkpoint"

    rerun = start_pipeline(tmp_path, synthetic_data_dir, tmp_path / "rerun.log")
    try:
        assert rerun.wait(timeout=150) == 0, (tmp_path / "rerun.log").read_text()[-3000:]
    finally:
        stop(rerun)
    log = (tmp_path / "rerun.log").read_text()

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("seqops-sentiment")
    cells = [
        run
        for run in client.search_runs([experiment.experiment_id])
        if run.data.tags.get("mlflow.runName") == "sentiment-lstm"
    ]
    assert len(cells) == 2
    resumed_runs = [run for run in cells if "resumed_from_epoch" in run.data.tags]
    assert len(resumed_runs) == 1, [run.data.tags for run in cells]
    resumed = resumed_runs[0]
    start = int(resumed.data.tags["resumed_from_epoch"])
    assert start >= epoch + 1  # the epoch seen in last.ckpt was finished, or a later one
    assert resumed.info.status == "FINISHED"
    # The run the kill interrupted, and its parent, are closed as KILLED, pointing at the resumed run.
    (killed,) = [run for run in cells if run is not resumed]
    assert killed.info.status == "KILLED" and killed.data.tags["resumed_by"] == resumed.info.run_id
    assert client.get_run(killed.data.tags["mlflow.parentRunId"]).info.status == "KILLED"
    assert resumed.data.tags["checkpoint_key"] in resumed.data.tags["checkpoint_dir"]
    assert re.search(rf"resuming lstm from epoch {start} \(checkpoint .*last\.ckpt\)", log), log[-3000:]
    # The rerun trained only the epochs left, and ended where an uninterrupted run ends.
    steps = [m.step for m in client.get_metric_history(resumed.info.run_id, "val/macro_f1")]
    assert sorted(steps) == list(range(start, MAX_EPOCHS))
    assert re.search(rf"lstm: best val_macro_f1 [\d.]+ after {MAX_EPOCHS} epochs", log), log[-3000:]
    # Shipped: the checkpoints are gone (the next run starts afresh), the weights are kept and logged.
    assert list((work / "checkpoints" / "sentiment").iterdir()) == []
    assert (work / "bundles" / "sentiment" / resumed.info.run_id / "network.pt").is_file()
    assert [a.path for a in client.list_artifacts(resumed.info.run_id, "network")] == ["network/network.pt"]


HOLD_LOCK = (
    "import fcntl, sys; f = open(sys.argv[1], 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
    "print('locked', flush=True); sys.stdin.read()"
)


def test_run_beside_a_live_holder_trains_in_its_own_folder(tmp_path: Path, sentiment_prepared) -> None:
    root = tmp_path / "checkpoints" / "sentiment"
    shared = root / "lstm-0123456789ab"
    shared.mkdir(parents=True)
    (shared / "last.ckpt").write_bytes(b"another run's checkpoint")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(shared / ".lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with claim_checkpoints(root, shared.name, "run-b") as lease:
            assert not lease.shared and "locked by another live run" in lease.reason
            assert lease.path == root / "lstm-0123456789ab.run-b"
            fit = train(FAMILY, sentiment_prepared, tiny_model(), TrainConfig(max_epochs=1), lease.path)
            assert fit.resumed_from_epoch is None
            assert (lease.path / "last.ckpt").is_file()
        assert not lease.path.exists()
        assert (shared / "last.ckpt").read_bytes() == b"another run's checkpoint"
    finally:
        holder.communicate("")
    # The holder is gone, and with it its lock (a killed holder's too: the kernel drops it).
    with claim_checkpoints(root, shared.name, "run-c") as lease:
        assert lease.shared and lease.path == shared
    assert not shared.exists()


class Payload:
    """Pickles as a call that leaves a file behind: what a malicious checkpoint could run on load."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (self.marker,)


@pytest.mark.parametrize("damage", ["truncated", "malicious"])
def test_unusable_last_checkpoint_is_not_loaded_and_training_starts_afresh(
    tmp_path: Path, sentiment_prepared, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = TrainConfig(max_epochs=2, patience=2)
    first = train(FAMILY, sentiment_prepared, tiny_model(), config, tmp_path)
    last = tmp_path / "last.ckpt"
    assert first.resumed_from_epoch is None and torch.load(last, weights_only=True)["epoch"] == 1
    marker = tmp_path / "code-ran"
    if damage == "truncated":  # as a kill while copying it into place would leave it
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    else:
        state = torch.load(last, weights_only=True)
        torch.save({**state, "hyper_parameters": Payload(marker)}, last)

    again = train(FAMILY, sentiment_prepared, tiny_model(), config, tmp_path)

    assert not marker.exists()
    assert again.resumed_from_epoch is None and again.epochs == 2
    assert "cannot resume from" in caplog.text and "training from scratch" in caplog.text
    assert sorted(p.name for p in tmp_path.glob("*.ckpt")) == ["best.ckpt", "last.ckpt"]


def test_finished_training_resumes_to_the_same_epoch(tmp_path: Path, sentiment_prepared) -> None:
    config = TrainConfig(max_epochs=2, patience=2)
    first = train(FAMILY, sentiment_prepared, tiny_model(), config, tmp_path)
    again = train(FAMILY, sentiment_prepared, tiny_model(), config, tmp_path)
    assert again.resumed_from_epoch == 2 and again.epochs == first.epochs == 2
    assert again.best_score == pytest.approx(first.best_score)


def tiny_model() -> ModelConfig:
    return ModelConfig(embedding_dim=8, hidden_size=8, dropout=0.0)
