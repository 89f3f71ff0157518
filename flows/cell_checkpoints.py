"""The checkpoint folder of a cell's training run, and the runs a kill left RUNNING in it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow
from prefect import get_run_logger

from flows.checkpoints import checkpoint_key, claim_checkpoints
from flows.config import TaskSettings
from flows.tracker import tracker
from tasks import PreparedData


@contextmanager
def cell_checkpoints(
    task_name: str, prepared: PreparedData, settings: TaskSettings, cell: str, work_dir: Path
) -> Iterator[Path]:
    """The checkpoint folder of one cell's training, in the active (child) MLflow run.

    It is named after the training (cell and ``checkpoint_key``), so that running it again after a kill
    resumes; it is deleted once the cell has shipped, so the next run trains from scratch. A run
    training the same thing at the same time uses a folder of its own.
    """
    run_id = mlflow.active_run().info.run_id
    model_config = settings.model.model_copy(update={"cell": cell})
    key = checkpoint_key(prepared.fingerprint, model_config.model_dump(), settings.train.model_dump())
    with claim_checkpoints(work_dir / "checkpoints" / task_name, f"{cell}-{key}", run_id) as lease:
        tags = {"checkpoint_key": key, "checkpoint_dir": str(lease.path)}
        tracker.set_tags(tags)
        if lease.shared:
            end_killed_runs(str(lease.path))
        else:
            get_run_logger().warning("%s: training without resume: %s", cell, lease.reason)
        yield lease.path


def end_killed_runs(checkpoint_dir: str) -> None:
    """Mark KILLED the runs a kill left RUNNING while they trained in this (now locked) folder.

    Holding the folder's lock proves they are dead: the kernel dropped their lock with their process.
    Their parent runs end KILLED too; each killed run is tagged with the run that took over.
    """
    active = mlflow.active_run()
    running = tracker.search_runs([active.info.experiment_id], "attributes.status = 'RUNNING'")
    ids = {run.info.run_id: run for run in running}
    for run in running:
        if run.info.run_id == active.info.run_id or run.data.tags.get("checkpoint_dir") != checkpoint_dir:
            continue
        parent = run.data.tags.get("mlflow.parentRunId")
        for killed in (run.info.run_id, *([parent] if parent in ids else [])):
            tracker.set_run_tag(killed, "resumed_by", active.info.run_id)
            tracker.set_terminated(killed, "KILLED")
