"""One task's run as a Prefect subflow: prepare its data, ship every cell, then promote a champion.

prepare (cached) -> for each cell (``flows/cell.py``): train -> export ONNX + parity check -> evaluate
the test split through onnxruntime -> log to MLflow -> register; then promote the best version to
``champion`` only if it beats the current champion on the task's promotion metric.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.artifacts import publish_task_artifacts
from flows.baselines import score_baselines
from flows.cell import Shipment
from flows.cell_tracking import cell_params
from flows.champion import promote_best
from flows.config import Profile
from flows.evaluate import evaluate
from flows.lineage import log_lineage, split_datasets
from flows.model_card import describe_versions
from flows.parallel_cells import CellJob, collect_cells, shared_threads, submit_cells
from flows.parent_run import (
    experiment_tags,
    log_cell_comparison,
    log_task_report,
    parent_description,
)
from flows.retries import tracked_run, transient
from flows.seeds import ship_cell_run
from flows.tables import promotion_headline
from flows.tracker import tracker
from flows.tracking import DESCRIPTION, git_commit
from serving.bundle import download_folder
from serving.profile import profile_rows
from serving.redaction import mask_credentials, masked_values
from tasks import DataConfig, PreparedData, Task, get_task


@task(
    name="prepare-data",
    task_run_name="{task_name}: prepare data",
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


@flow(name="seqops-task", flow_run_name="{task_name}")
def run_task(
    task_name: str,
    profile: Profile,
    config: DataConfig,
    work_dir: Path,
    register_models: bool,
    parallel: int = 1,
) -> dict[str, Any]:
    """Prepare a task's data, ship every cell in child runs of one parent run, then promote (a subflow).

    With ``parallel`` > 1 the cells are shipped at once on the flow's task runner, each on its share of
    the cores (``flows.parallel_cells``).
    """
    task_ = get_task(task_name)
    if parallel > 1:
        profile = shared_threads(profile, task_name, min(parallel, len(profile.cells)))
    settings = profile.tasks[task_name]
    prepared = prepare_data(task_name, config)
    experiment_id = tracker.use_experiment(f"seqops-{task_name}", work_dir)
    tracker.set_experiment_tags(experiment_id, experiment_tags(task_))
    with tracked_run(f"{task_name}-{time.strftime('%Y%m%d-%H%M%S')}") as parent:
        data_params = masked_values({f"data.{k}": v for k, v in config.model_dump(mode="json").items()})
        tracker.log_params(data_params)
        tracker.log_metrics({f"data/{k}": v for k, v in prepared.stats.items()})
        tags = {
            "data_source": mask_credentials(prepared.source),
            "data_fingerprint": prepared.fingerprint,
            "git_commit": git_commit(),
            "profile": profile.name,
        }
        tracker.set_tags(tags)
        datasets = split_datasets(prepared)  # built once: the parent and every cell run log them
        log_lineage(datasets)
        training_profile = profile_rows(
            prepared.codec, task_.references(prepared.splits["train"], prepared.codec)[0]
        ).summary()
        tracker.log_dict(training_profile, "training_input_profile.json")
        score = score_baselines.with_options(task_run_name=f"{task_name}: classical baselines")
        if parallel > 1:
            uri, parent_id = mlflow.get_tracking_uri(), parent.info.run_id
            jobs = [
                CellJob(
                    task_name,
                    cell,
                    profile,
                    config,
                    str(work_dir.resolve()),
                    register_models,
                    training_profile,
                    uri,
                    experiment_id,
                    parent_id,
                )
                for cell in profile.cells
            ]
            shipping = submit_cells(jobs)
            baselines = score(task_, prepared)  # here, while the cells train in their processes
            rows = collect_cells(shipping)
        else:
            baselines = score(task_, prepared)
            shipment = Shipment(
                task_, prepared, profile, work_dir, register_models, training_profile, datasets
            )
            rows = [ship_cell_run(shipment, settings, cell) for cell in profile.cells]
        log_cell_comparison(task_name, rows)
        decision = gate(task_, prepared, rows, register_models)
        cell_settings = {  # with seeds, the seed registered
            row["cell"]: cell_params(task_, settings, row["cell"], profile.name)
            | {"train.seed": row.get("seed")}
            for row in rows
        }
        describe_versions(task_, prepared, rows, baselines, decision, cell_settings)
        tracker.log_dict(decision, "promotion.json")
        headline = promotion_headline(decision)
        tracker.set_tag("promotion", headline)
        tracker.set_tag(
            DESCRIPTION, parent_description(task_, profile.name, prepared, rows, baselines, headline)
        )
        compared = {f"promotion/{side}": decision.get(side) for side in ("candidate", "champion")}
        tracker.log_metrics({k: v for k, v in compared.items() if v is not None})
        log_task_report(task_name, work_dir)
    publish_task_artifacts(task_, rows + baselines, decision, experiment_id)
    return {
        "task": task_name,
        "parent_run_id": parent.info.run_id,
        "cells": [{k: v for k, v in row.items() if k != "gradient_flow"} for row in rows],
        "baselines": baselines,
        "promotion": decision,
    }


def gate(task_: Task, prepared: PreparedData, rows: list[dict[str, Any]], register: bool) -> dict[str, Any]:
    """The champion gate's decision on this run's registered cells (re-scoring the champion if needed)."""
    if not register:
        return {"promoted": False, "reason": "registration off"}
    model_name = f"seqops-{task_.name}"

    def rescore(version: str) -> float:
        uri = f"models:/{model_name}/{version}"
        with download_folder(uri) as downloads:
            bundle = tracker.download_bundle(uri, downloads)
            scored = evaluate.fn(task_.name, bundle, prepared.splits["test"])
        return scored.metrics[task_.promotion_metric]

    promote = promote_best.with_options(task_run_name=f"{task_.name}: champion gate")
    return promote(task_, rows, prepared.codec.graphs, prepared.fingerprint, rescore)
