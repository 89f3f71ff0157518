"""The seqops pipeline as a Prefect flow: every task's run (``flows/task_run.py``), then the report."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from prefect import flow
from prefect import tags as prefect_tags
from prefect.runtime import flow_run
from prefect.task_runners import ProcessPoolTaskRunner

from flows.config import resolve_run
from flows.failures import install_log_hygiene
from flows.parallel_cells import check_parallel
from flows.parallel_tasks import ship_tasks, tasks_at_once
from flows.parent_run import log_report
from flows.task_run import run_task
from flows.tracking import configure_tracking
from models.config import Cell


def pipeline_run_name() -> str:
    """A pipeline flow run's name: its tasks and start (``task_a+task_b 2026-11-30 06:12``)."""
    names = flow_run.parameters.get("tasks") or ["all tasks"]
    return f"{'+'.join(names)} {time.strftime('%Y-%m-%d %H:%M')}"


def run_tags(profile: str, task_names: list[str], cells: list[str]) -> list[str]:
    """The Prefect tags of a pipeline run and its subflows: its profile, tasks and cells."""
    return [
        f"profile:{profile}",
        *(f"task:{name}" for name in task_names),
        *(f"cell:{cell}" for cell in cells),
    ]


@flow(name="seqops-pipeline", flow_run_name=pipeline_run_name)
def pipeline(
    tasks: list[str] | None = None,
    cells: list[Cell] | None = None,
    profile: str = "default",
    data_dir: str | None = None,
    work_dir: str = ".seqops",
    register_models: bool = True,
    parallel: int = 1,
) -> list[dict[str, Any]]:
    """Train, ship and (optionally) promote models for each task.

    Args:
        tasks: Task names (default: every task in the profile).
        cells: Recurrent cells to train (default: the profile's).
        profile: Built-in profile name or a YAML path.
        data_dir: Folder with local data copies (default: ``SEQOPS_DATA_DIR`` or ``../shared/data``).
        work_dir: Folder for caches, checkpoints and bundles.
        register_models: Register versions and run the champion gate.
        parallel: Trainings at once, each in a process of its own: whole tasks when there are several,
            else the task's cells (1: one after another).

    Returns:
        One summary per task: per-cell metrics and the promotion decision.
    """
    install_log_hygiene()
    settings, configs = resolve_run(profile, cells, tasks, data_dir, work_dir)
    check_parallel(parallel, settings, list(configs))
    configure_tracking()
    with prefect_tags(*run_tags(settings.name, list(configs), list(settings.cells))):
        if parallel > 1 and len(configs) > 1:
            jobs = tasks_at_once(settings, configs, Path(work_dir), register_models, parallel)
            runner = ProcessPoolTaskRunner(max_workers=min(parallel, len(jobs)))
            results = ship_tasks.with_options(task_runner=runner)(jobs)
        else:
            subflow = run_task
            if parallel > 1:
                pool = ProcessPoolTaskRunner(max_workers=min(parallel, len(settings.cells)))
                subflow = run_task.with_options(task_runner=pool)
            results = [
                subflow(name, settings, config, Path(work_dir), register_models, parallel)
                for name, config in configs.items()
            ]
    log_report(Path(work_dir))
    return results
