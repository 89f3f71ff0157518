"""The seqops pipeline as a Prefect flow.

prepare (cached) -> for each cell: train -> export ONNX + parity check -> evaluate the test split
through onnxruntime -> log to MLflow -> register; then promote the best version to ``champion``
only if it beats the current champion on the task's promotion metric.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.champion import promote_best
from flows.config import Profile, TaskSettings, resolve_run
from flows.evaluate import evaluate, quantize_int8
from flows.tracking import (
    EpochMetricsToMlflow,
    configure_tracking,
    git_commit,
    log_lineage,
    log_plots,
    log_translation_examples,
    register_version,
    use_experiment,
    with_retries,
)
from models.export import ParityError, export_graphs
from models.train import FitResult, save_network, train
from serving.predictor import resolve_bundle, save_bundle
from serving.pyfunc import BUNDLE_ARTIFACT, CODE_PATHS, MODEL_CODE, PIP_REQUIREMENTS
from tasks import DataConfig, PreparedData, Task, get_task
from tasks.profile import profile_rows


@task(name="prepare-data", retries=2, retry_delay_seconds=5, cache_policy=NO_CACHE)
def prepare_data(task_name: str, config: DataConfig) -> PreparedData:
    """Load, split and encode a task's data (instant when the on-disk cache is fresh)."""
    prepared = get_task(task_name).prepare(config)
    get_run_logger().info(
        "%s: %s from %s (fingerprint %s)", task_name, prepared.stats, prepared.source, prepared.fingerprint
    )
    return prepared


@task(name="train-cell", cache_policy=NO_CACHE)
def train_cell(prepared: PreparedData, settings: TaskSettings, cell: str, checkpoint_dir: Path) -> FitResult:
    """Train one recurrent cell, logging per-epoch curves to the active MLflow run."""
    model_config = settings.model.model_copy(update={"cell": cell})
    fit = train(prepared, model_config, settings.train, checkpoint_dir, callbacks=[EpochMetricsToMlflow()])
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
        error = export_graphs(fit.network, graphs_dir, prepared.codec.network_shape(), tolerance)
        save_bundle(bundle_dir, task_name, prepared.codec, graphs_dir, {**metadata, "parity_error": error})
    finally:
        shutil.rmtree(graphs_dir, ignore_errors=True)
    return bundle_dir, error


def ship_cell(
    task_: Task,
    prepared: PreparedData,
    settings: TaskSettings,
    profile: Profile,
    cell: str,
    work_dir: Path,
    register: bool,
    training_profile: dict[str, float],
) -> dict[str, Any]:
    """Train, export, evaluate (fp32 and int8), log and register one cell in the active (child) MLflow run."""
    run_id = mlflow.active_run().info.run_id
    params = {
        "task": task_.name,
        "cell": cell,
        "profile": profile.name,
        **{f"model.{k}": v for k, v in settings.model.model_copy(update={"cell": cell})},
        **{f"train.{k}": v for k, v in settings.train},
    }
    with_retries(lambda: mlflow.log_params(params), "log params")
    fit = train_cell(prepared, settings, cell, work_dir / "checkpoints" / task_.name / run_id)
    row: dict[str, Any] = {
        "cell": cell,
        "epochs": fit.epochs,
        "train_seconds": round(fit.seconds, 1),
        "parameter_count": sum(p.numel() for p in fit.network.parameters()),
        "run_id": run_id,
    }
    # The PyTorch weights too: for fine-tuning, and for benchmarks against PyTorch inference.
    weights = save_network(fit.network, work_dir / "checkpoints" / task_.name / run_id / "network.pt")
    with_retries(lambda: mlflow.log_artifact(str(weights), "network"), "log network weights")
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
        mlflow.set_tag("parity", "failed")
        return {**row, "status": f"not registered: {error}"}
    metrics, predictions, references = evaluate(task_.name, bundle_dir, prepared.splits["test"])
    if profile.quantize == "int8":
        gate, int8_metrics = quantize_int8(
            task_.name, bundle_dir, prepared.splits["test"], metrics, profile.int8_tolerance
        )
        metrics.update({f"{name}_int8": value for name, value in int8_metrics.items()})
        row["int8"] = "accepted" if gate.accepted else "refused"
        get_run_logger().info("%s %s: %s", task_.name, cell, gate.reason)
        mlflow.set_tags({"int8": row["int8"], "int8_gate": gate.reason})
    size = sum(path.stat().st_size for path in bundle_dir.glob("*.onnx"))
    row.update({f"test_{k}": v for k, v in metrics.items()})
    row.update({"onnx_kb": round(size / 1024, 1), "parity_error": parity})
    with_retries(
        lambda: mlflow.log_metrics(
            {
                **{f"test_{k}": v for k, v in metrics.items()},
                "parity_error": parity,
                "train_seconds": fit.seconds,
                "onnx_bytes": size,
                "best_" + fit.monitor: fit.best_score,
            }
        ),
        "log test metrics",
    )
    log_plots(task_, prepared.codec, predictions, references, f"{task_.name} {cell}: test")
    if task_.kind == "seq2seq":
        log_translation_examples(
            task_, bundle_dir, prepared.splits["test"], f"{task_.name} {cell}: attention"
        )
    model_info = with_retries(
        lambda: mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            pip_requirements=PIP_REQUIREMENTS,
            code_paths=CODE_PATHS,
        ),
        "log pyfunc model",
    )
    if register:
        tags = {
            "task": task_.name,
            "cell": cell,
            "parity_error": parity,
            "data_fingerprint": prepared.fingerprint,
            "git_commit": git_commit(),
            "run_id": run_id,
            **{f"test_{k}": v for k, v in metrics.items()},
        }
        row["version"] = register_version(model_info.model_uri, f"seqops-{task_.name}", tags)
    return {**row, "status": "registered" if register else "logged"}


def run_task(
    task_name: str, profile: Profile, config: DataConfig, work_dir: Path, register: bool
) -> dict[str, Any]:
    """Prepare a task's data, ship every cell in child runs of one parent run, then promote."""
    task_ = get_task(task_name)
    settings = profile.tasks[task_name]
    prepared = prepare_data(task_name, config)
    use_experiment(f"seqops-{task_name}", work_dir)
    with mlflow.start_run(run_name=f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}") as parent:
        with_retries(
            lambda: mlflow.log_params({f"data.{k}": v for k, v in config.model_dump().items()}), "params"
        )
        with_retries(
            lambda: mlflow.log_metrics({f"data_{k}": v for k, v in prepared.stats.items()}), "data stats"
        )
        mlflow.set_tags(
            {
                "data_source": prepared.source,
                "data_fingerprint": prepared.fingerprint,
                "git_commit": git_commit(),
                "profile": profile.name,
            }
        )
        log_lineage(prepared)
        training_profile = profile_rows(
            prepared.codec, task_.references(prepared.splits["train"], prepared.codec)[0]
        ).summary()
        mlflow.log_dict(training_profile, "training_input_profile.json")
        rows = []
        for cell in profile.cells:
            with mlflow.start_run(run_name=f"{task_name}-{cell}", nested=True):
                log_lineage(prepared)
                rows.append(
                    ship_cell(task_, prepared, settings, profile, cell, work_dir, register, training_profile)
                )
        if register:
            model_name = f"seqops-{task_name}"

            def rescore(version: str) -> float:
                bundle = resolve_bundle(f"models:/{model_name}/{version}")
                scores, _, _ = evaluate.fn(task_name, bundle, prepared.splits["test"])
                return scores[task_.promotion_metric]

            decision = promote_best(task_, rows, prepared.fingerprint, rescore)
        else:
            decision = {"promoted": False, "reason": "registration off"}
        mlflow.log_dict(decision, "promotion.json")
        mlflow.set_tag("promotion", decision["reason"])
    create_table_artifact(
        table=rows,
        key=f"seqops-{task_name.replace('_', '-')}-cells",
        description=f"{task_name}: cells compared on the test split (onnxruntime)",
    )
    create_markdown_artifact(
        key=f"seqops-{task_name.replace('_', '-')}-promotion",
        markdown=f"**{task_name}** promotion: {decision['reason']}\n\n```\n{decision}\n```",
    )
    return {"task": task_name, "parent_run_id": parent.info.run_id, "cells": rows, "promotion": decision}


@flow(name="seqops-pipeline")
def pipeline(
    tasks: list[str] | None = None,
    cells: list[str] | None = None,
    profile: str = "default",
    data_dir: str | None = None,
    work_dir: str = ".seqops",
    register_models: bool = True,
) -> list[dict[str, Any]]:
    """Train, ship and (optionally) promote models for each task.

    Args:
        tasks: Task names (default: every task in the profile).
        cells: Recurrent cells to train (default: the profile's).
        profile: Built-in profile name or a YAML path.
        data_dir: Folder with local data copies (default: ``SEQOPS_DATA_DIR`` or ``../shared/data``).
        work_dir: Folder for caches, checkpoints and bundles.
        register_models: Register versions and run the champion gate.

    Returns:
        One summary per task: per-cell metrics and the promotion decision.
    """
    settings, configs = resolve_run(profile, cells, tasks, data_dir, work_dir)
    configure_tracking()
    return [
        run_task(name, settings, config, Path(work_dir), register_models) for name, config in configs.items()
    ]
