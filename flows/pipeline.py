"""The seqops pipeline as a Prefect flow.

prepare (cached) -> for each cell (``flows/cell.py``): train -> export ONNX + parity check -> evaluate
the test split through onnxruntime -> log to MLflow -> register; then promote the best version to
``champion`` only if it beats the current champion on the task's promotion metric.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.baselines import score_baselines
from flows.cell import Shipment
from flows.champion import promote_best
from flows.config import Profile, resolve_run
from flows.evaluate import evaluate
from flows.failures import install_log_hygiene
from flows.retries import tracked_run, transient
from flows.seeds import ship_cell_runs
from flows.tracker import tracker
from flows.tracking import (
    configure_tracking,
    git_commit,
    log_lineage,
)
from models.config import Cell
from serving.bundle import download_folder
from serving.profile import profile_rows
from serving.redaction import mask_credentials, masked_values
from tasks import DataConfig, PreparedData, get_task


@task(
    name="prepare-data",
    retries=2,
    retry_delay_seconds=5,
    retry_condition_fn=transient,
    cache_policy=NO_CACHE,
)
def prepare_data(task_name: str, config: DataConfig) -> PreparedData:
    """Load, split and encode a task's data (instant when the on-disk cache is fresh)."""
    prepared = get_task(task_name).prepare(config)
    get_run_logger().info(
        "%s: %s from %s (fingerprint %s)", task_name, prepared.stats, prepared.source, prepared.fingerprint
    )
    return prepared


def run_task(
    task_name: str, profile: Profile, config: DataConfig, work_dir: Path, register: bool
) -> dict[str, Any]:
    """Prepare a task's data, ship every cell in child runs of one parent run, then promote."""
    task_ = get_task(task_name)
    settings = profile.tasks[task_name]
    prepared = prepare_data(task_name, config)
    tracker.use_experiment(f"seqops-{task_name}", work_dir)
    with tracked_run(f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}") as parent:
        data_params = masked_values({f"data.{k}": v for k, v in config.model_dump(mode="json").items()})
        tracker.log_params(data_params)
        tracker.log_metrics({f"data_{k}": v for k, v in prepared.stats.items()})
        tags = {
            "data_source": mask_credentials(prepared.source),
            "data_fingerprint": prepared.fingerprint,
            "git_commit": git_commit(),
            "profile": profile.name,
        }
        tracker.set_tags(tags)
        log_lineage(prepared)
        training_profile = profile_rows(
            prepared.codec, task_.references(prepared.splits["train"], prepared.codec)[0]
        ).summary()
        tracker.log_dict(training_profile, "training_input_profile.json")
        baselines = score_baselines(task_, prepared)
        rows = []
        shipment = Shipment(task_, prepared, profile, work_dir, register, training_profile)
        for cell in profile.cells:
            with tracked_run(f"{task_name}-{cell}", nested=True):
                log_lineage(prepared)
                rows.append(ship_cell_runs(shipment, settings, cell))
        if register:
            model_name = f"seqops-{task_name}"

            def rescore(version: str) -> float:
                uri = f"models:/{model_name}/{version}"
                with download_folder(uri) as downloads:
                    bundle = tracker.download_bundle(uri, downloads)
                    scores, _, _ = evaluate.fn(task_name, bundle, prepared.splits["test"])
                return scores[task_.promotion_metric]

            decision = promote_best(task_, rows, prepared.codec.graphs, prepared.fingerprint, rescore)
        else:
            decision = {"promoted": False, "reason": "registration off"}
        tracker.log_dict(decision, "promotion.json")
        tracker.set_tag("promotion", decision["reason"])
        compared = {f"promotion_{side}": decision.get(side) for side in ("candidate", "champion")}
        tracker.log_metrics({k: v for k, v in compared.items() if v is not None})
    slug = re.sub(r"[^a-z0-9]+", "-", task_name.lower()).strip("-")  # Prefect's artifact keys
    create_table_artifact(
        table=rows + baselines,  # beside the cells, never promoted
        key=f"seqops-{slug}-cells",
        description=f"{task_name}: cells compared on the test split (onnxruntime)",
    )
    create_markdown_artifact(
        key=f"seqops-{slug}-promotion",
        markdown=promotion_markdown(task_name, decision),
    )
    return {
        "task": task_name,
        "parent_run_id": parent.info.run_id,
        "cells": rows,
        "baselines": baselines,
        "promotion": decision,
    }


def promotion_markdown(task_name: str, decision: dict[str, Any]) -> str:
    """The champion gate's decision as a Markdown table (a Prefect artifact)."""
    lines = [f"**{task_name}**: {decision['reason']}", "", "| | value |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in decision.items() if key != "reason"]
    return "\n".join(lines)


@flow(name="seqops-pipeline")
def pipeline(
    tasks: list[str] | None = None,
    cells: list[Cell] | None = None,
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
    install_log_hygiene()
    settings, configs = resolve_run(profile, cells, tasks, data_dir, work_dir)
    configure_tracking()
    return [
        run_task(name, settings, config, Path(work_dir), register_models) for name, config in configs.items()
    ]
