"""Shipping one recurrent cell, in its own MLflow run.

Train (resuming a killed run), export to ONNX with the parity check, score fp32 and int8 through
onnxruntime, log curves, plots, metrics and the model, register.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pytorch_lightning as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.cell_tracking import (
    cell_description,
    cell_params,
    learning_curves_figure,
    log_figure,
    shipping_metrics,
)
from flows.config import Profile, TaskSettings
from flows.evaluate import evaluate, quantize_int8
from flows.gradient_plots import cell_gradient_figure
from flows.progress import TrainingProgress
from flows.tracker import tracker
from flows.tracking import (
    DESCRIPTION,
    EpochMetricsToMlflow,
    EpochSamplesToMlflow,
    git_commit,
    log_bundle_model,
    log_diagnostics,
    register_version,
)
from models.export import ParityError, export_graphs
from models.gradient_flow import GradientFlow
from models.train import FitResult, save_network, train
from serving.bundle import save_bundle
from serving.pyfunc import BUNDLE_ARTIFACT
from tasks import PreparedData, Task


@task(name="train-cell", task_run_name="{task_.name}/{cell}: train", cache_policy=NO_CACHE)
def train_cell(
    task_: Task,
    prepared: PreparedData,
    settings: TaskSettings,
    cell: str,
    checkpoint_dir: Path,
    callbacks: list[pl.Callback],
) -> FitResult:
    """Train one recurrent cell, with ``callbacks`` (curves, gradient flow) and the task's samples.

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
        callbacks=[
            *callbacks,
            EpochSamplesToMlflow(task_, prepared.codec),
            TrainingProgress(f"{task_.name}/{cell}", logger.info),
        ],
        on_resume=resuming,
    )
    logger.info(
        "%s: best %s %.4f after %d epochs in %.1fs",
        cell,
        fit.monitor,
        fit.best_score,
        fit.epochs,
        fit.seconds,
    )
    return fit


@task(name="export-onnx", task_run_name="{task_name}/{metadata[cell]}: export ONNX", cache_policy=NO_CACHE)
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
        datasets: The splits as logged MLflow datasets (test scores are linked to the test one).
    """

    task: Task
    prepared: PreparedData
    profile: Profile
    work_dir: Path
    register: bool
    training_profile: dict[str, float]
    datasets: dict[str, Any] = field(default_factory=dict)


def ship_cell(shipment: Shipment, settings: TaskSettings, cell: str, checkpoint_dir: Path) -> dict[str, Any]:
    """Train, export, evaluate (fp32 and int8), log and register one cell in the active (child) MLflow run."""
    task_, prepared, profile, work_dir = shipment.task, shipment.prepared, shipment.profile, shipment.work_dir
    run_id, title = mlflow.active_run().info.run_id, f"{task_.name} {cell}"
    tracker.log_params(cell_params(task_, settings, cell, profile.name))
    curves = EpochMetricsToMlflow()
    gradients = GradientFlow(report=tracker.log_metrics)
    fit = train_cell(task_, prepared, settings, cell, checkpoint_dir, [curves, gradients])
    log_figure(learning_curves_figure(curves.history, f"{title}: learning curves"), "learning_curves.png")
    flow = gradients.summary()
    tracker.log_dict(flow, "gradient_flow.json")
    log_figure(cell_gradient_figure(flow, f"{title}: gradient flow"), "gradient_flow.png")
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
        "gradient_flow": flow,
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
                "input_profile": shipment.training_profile,
            },
        )
    except ParityError as error:
        tracker.set_tag("parity", "failed")
        row["status"] = f"not registered: {error}"
        tracker.set_tag(DESCRIPTION, cell_description(row, task_, profile.name))
        return row
    scored = evaluate.with_options(task_run_name=f"{task_.name}/{cell}: evaluate")(
        task_.name, bundle_dir, prepared.splits["test"]
    )
    metrics = scored.metrics
    if profile.quantize == "int8":
        gate, int8_metrics = quantize_int8.with_options(task_run_name=f"{task_.name}/{cell}: int8")(
            task_.name, bundle_dir, prepared.splits["test"], metrics, profile.int8_tolerance
        )
        metrics.update({f"{name}_int8": value for name, value in int8_metrics.items()})
        row["int8"] = "accepted" if gate.accepted else "refused"
        get_run_logger().info("%s %s: %s", task_.name, cell, gate.reason)
        tracker.set_tags({"int8": row["int8"], "int8_gate": gate.reason})
    size = sum(path.stat().st_size for path in bundle_dir.glob("*.onnx"))
    row.update({f"test_{k}": v for k, v in metrics.items()})
    row.update({"onnx_kb": round(size / 1024, 1), "parity_error": parity, "ms_per_row": scored.ms_per_row})
    log_diagnostics(
        task_, bundle_dir, prepared.splits["test"], (scored.predictions, scored.references), title
    )
    examples = (scored.rows[:3], scored.predictions[:3])
    model = log_bundle_model(bundle_dir, f"{task_.name}-{cell}", examples)
    row["model_uri"] = model.model_uri
    tracker.log_metrics(shipping_metrics(row), model_id=model.model_id, dataset=shipment.datasets.get("test"))
    tracker.log_metrics({f"val/best_{fit.monitor.removeprefix('val_')}": fit.best_score})
    if shipment.register:
        row["version"] = register_version(
            row["model_uri"], f"seqops-{task_.name}", version_tags(task_, prepared, row)
        )
    row["status"] = "registered" if shipment.register else "logged"
    tracker.set_tag(DESCRIPTION, cell_description(row, task_, profile.name))
    return row


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
