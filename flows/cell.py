"""Shipping one recurrent cell, in its own MLflow run.

Train (resuming a killed run), export to ONNX with the parity check, score fp32 and int8 through
onnxruntime, log curves, plots, metrics and the model, register.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.checkpoints import checkpoint_key, claim_checkpoints
from flows.config import Profile, TaskSettings
from flows.evaluate import evaluate, quantize_int8
from flows.tracker import tracker
from flows.tracking import (
    EpochMetricsToMlflow,
    EpochSamplesToMlflow,
    git_commit,
    log_bundle_model,
    log_diagnostics,
    register_version,
)
from models.export import ParityError, export_graphs
from models.train import FitResult, save_network, train
from serving.bundle import save_bundle
from serving.pyfunc import BUNDLE_ARTIFACT
from tasks import PreparedData, Task


@task(name="train-cell", cache_policy=NO_CACHE)
def train_cell(
    task_: Task, prepared: PreparedData, settings: TaskSettings, cell: str, checkpoint_dir: Path
) -> FitResult:
    """Train one recurrent cell, logging per-epoch curves (and the task's samples) to the active MLflow run.

    Resumes from the ``last.ckpt`` a killed run of the same training left in ``checkpoint_dir``.
    """
    model_config = settings.model.model_copy(update={"cell": cell})
    logger = get_run_logger()

    def resuming(epoch: int, checkpoint: Path) -> None:
        logger.info("resuming %s from epoch %d (checkpoint %s)", cell, epoch, checkpoint)
        tracker.set_tag("resumed_from_epoch", epoch)

    fit = train(
        task_.family,
        prepared,
        model_config,
        settings.train,
        checkpoint_dir,
        callbacks=[EpochMetricsToMlflow(), EpochSamplesToMlflow(task_, prepared.codec)],
        on_resume=resuming,
    )
    get_run_logger().info(
        "%s: best %s %.4f after %d epochs in %.1fs",
        cell,
        fit.monitor,
        fit.best_score,
        fit.epochs,
        fit.seconds,
    )
    return fit


@task(name="export-onnx", cache_policy=NO_CACHE)
def export_bundle(
    task_name: str,
    prepared: PreparedData,
    fit: FitResult,
    bundle_dir: Path,
    tolerance: float,
    metadata: dict[str, Any],
) -> tuple[Path, float]:
    """Export to ONNX, check parity on unseen shapes, and write the servable bundle."""
    graphs_dir = bundle_dir.with_name("graphs")
    try:
        error = export_graphs(fit.family, fit.network, graphs_dir, prepared.codec.network_shape(), tolerance)
        save_bundle(bundle_dir, task_name, prepared.codec, graphs_dir, {**metadata, "parity_error": error})
    finally:
        shutil.rmtree(graphs_dir, ignore_errors=True)
    return bundle_dir, error


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


@dataclass(frozen=True)
class Shipment:
    """What the cells of one task's pipeline run share.

    Attributes:
        task: The task.
        prepared: Its prepared data.
        profile: The run's profile.
        work_dir: Folder for checkpoints and bundles.
        register: Register the shipped models (and gate them).
        training_profile: The training inputs' statistics, saved in bundles for drift checks.
    """

    task: Task
    prepared: PreparedData
    profile: Profile
    work_dir: Path
    register: bool
    training_profile: dict[str, float]


def ship_cell(shipment: Shipment, settings: TaskSettings, cell: str, checkpoint_dir: Path) -> dict[str, Any]:
    """Train, export, evaluate (fp32 and int8), log and register one cell in the active (child) MLflow run."""
    task_, prepared, profile, work_dir = shipment.task, shipment.prepared, shipment.profile, shipment.work_dir
    register, training_profile = shipment.register, shipment.training_profile
    run_id = mlflow.active_run().info.run_id
    params = {
        "task": task_.name,
        "cell": cell,
        "profile": profile.name,
        **{f"model.{k}": v for k, v in settings.model.model_copy(update={"cell": cell})},
        **{f"train.{k}": v for k, v in settings.train},
    }
    tracker.log_params(params)
    fit = train_cell(task_, prepared, settings, cell, checkpoint_dir)
    row: dict[str, Any] = {
        "cell": cell,
        "seed": settings.train.seed,
        "validation_metric": fit.monitor,
        "validation_score": fit.best_score,
        "validation_better": fit.monitor_mode,
        "epochs": fit.epochs,
        "train_seconds": round(fit.seconds, 1),
        "parameter_count": sum(p.numel() for p in fit.network.parameters()),
        "run_id": run_id,
    }
    # The PyTorch weights too: for fine-tuning, and for benchmarks against PyTorch inference.
    weights = save_network(fit.network, work_dir / "bundles" / task_.name / run_id / "network.pt")
    tracker.log_artifact(weights, "network")
    bundle_dir = work_dir / "bundles" / task_.name / run_id / BUNDLE_ARTIFACT
    try:
        bundle_dir, parity = export_bundle(
            task_.name,
            prepared,
            fit,
            bundle_dir,
            profile.parity_tolerance,
            {
                "cell": cell,
                "run_id": run_id,
                "fingerprint": prepared.fingerprint,
                "model_config": settings.model.model_copy(update={"cell": cell}).model_dump(),
                "input_profile": training_profile,
            },
        )
    except ParityError as error:
        tracker.set_tag("parity", "failed")
        return {**row, "status": f"not registered: {error}"}
    metrics, predictions, references = evaluate(task_.name, bundle_dir, prepared.splits["test"])
    if profile.quantize == "int8":
        gate, int8_metrics = quantize_int8(
            task_.name, bundle_dir, prepared.splits["test"], metrics, profile.int8_tolerance
        )
        metrics.update({f"{name}_int8": value for name, value in int8_metrics.items()})
        row["int8"] = "accepted" if gate.accepted else "refused"
        get_run_logger().info("%s %s: %s", task_.name, cell, gate.reason)
        tracker.set_tags({"int8": row["int8"], "int8_gate": gate.reason})
    size = sum(path.stat().st_size for path in bundle_dir.glob("*.onnx"))
    row.update({f"test_{k}": v for k, v in metrics.items()})
    row.update({"onnx_kb": round(size / 1024, 1), "parity_error": parity})
    tracker.log_metrics(
        {
            **{f"test_{k}": v for k, v in metrics.items()},
            "parity_error": parity,
            "train_seconds": fit.seconds,
            "onnx_bytes": size,
            "best_" + fit.monitor: fit.best_score,
        }
    )
    log_diagnostics(
        task_, bundle_dir, prepared.splits["test"], (predictions, references), f"{task_.name} {cell}: test"
    )
    row["model_uri"] = log_bundle_model(bundle_dir).model_uri
    if register:
        row["version"] = register_version(
            row["model_uri"], f"seqops-{task_.name}", version_tags(task_, prepared, row)
        )
    return {**row, "status": "registered" if register else "logged"}


def version_tags(task_: Task, prepared: PreparedData, row: dict[str, Any]) -> dict[str, Any]:
    """The tags of a registered version: what trained it, on which data, and its test scores."""
    return {
        "task": task_.name,
        "cell": row["cell"],
        "seed": row["seed"],
        "parity_error": row["parity_error"],
        "data_fingerprint": prepared.fingerprint,
        "git_commit": git_commit(),
        "run_id": row["run_id"],
        **{k: v for k, v in row.items() if k.startswith("test_")},
    }
