"""A task's cells shipped at once (``seqops pipeline --parallel N``), each in a process of its own.

Each cell runs as a Prefect task on Prefect's process-pool task runner. A worker process reads the
prepared splits from the on-disk cache, opens the cell's MLflow run under the task's parent run and
ships the cell exactly as the sequential pipeline does. Every fit seeds itself when it starts, so the
scores are those of a sequential run with the same seeds and torch threads.

Each cell trains on at most its share of the cores (``shared_threads``): two cells of two threads each
on two cores took about 2.5 times as long per epoch as one cell alone: worse than one after another.

Dask (which ``seqops tune`` uses) was measured first: its worker's event loop kept a second core busy
beside every training, so two cells at once each took 1.8 times as long.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.futures import PrefectFuture, wait

from flows.cell import Shipment
from flows.config import ConfigError, Profile
from flows.lineage import split_datasets
from flows.seeds import ship_cell_run
from tasks import DataConfig, get_task


@dataclass(frozen=True)
class CellJob:
    """What a worker process needs to ship one cell (picklable).

    Attributes:
        task_name: The task.
        cell: The recurrent cell.
        profile: The run's profile.
        config: The task's validated data settings (the prepared splits are read from their cache).
        work_dir: Folder for checkpoints and bundles.
        register: Register the shipped model.
        training_profile: The training inputs' statistics, saved in the bundle.
        tracking_uri: MLflow's tracking URI.
        experiment_id: The task's experiment.
        parent_run_id: The task's parent run, which the cell's run is nested under.
    """

    task_name: str
    cell: str
    profile: Profile
    config: DataConfig
    work_dir: str
    register: bool
    training_profile: dict[str, float]
    tracking_uri: str
    experiment_id: str
    parent_run_id: str


def shared_threads(profile: Profile, task_name: str, at_once: int) -> Profile:
    """The profile with the task's ``train.num_threads`` cut to its share of the cores.

    Args:
        profile: The run's profile.
        task_name: The task whose trainings share the machine.
        at_once: Trainings running at once (this task's cells, or whole tasks).

    Returns:
        A copy whose task trains on ``min(num_threads, cores // at_once)`` threads (the share alone
        when ``num_threads`` is 0).
    """
    settings = profile.tasks[task_name]
    share = max(1, (os.cpu_count() or 1) // at_once)
    threads = min(settings.train.num_threads or share, share)
    train = settings.train.model_copy(update={"num_threads": threads})
    tasks = profile.tasks | {task_name: settings.model_copy(update={"train": train})}
    return profile.model_copy(update={"tasks": tasks})


def check_parallel(parallel: int, profile: Profile, task_names: list[str]) -> None:
    """Refuse a ``--parallel`` this machine or these settings cannot honour, before any work.

    Raises:
        ConfigError: For more cells at once than cores, or cells at once that each train on several
            processes themselves (``train.devices`` > 1).
    """
    cores = os.cpu_count() or 1
    if parallel > cores:
        raise ConfigError(f"--parallel {parallel}: this machine has {cores} cores; give at most {cores}")
    distributed = [name for name in task_names if profile.tasks[name].train.distributed]
    if parallel > 1 and distributed:
        raise ConfigError(
            f"--parallel {parallel} with tasks.{distributed[0]}.train.devices > 1: "
            "each cell would start processes of its own; give one or the other"
        )


@task(name="ship-cell", task_run_name="{job.task_name}/{job.cell}: ship", cache_policy=NO_CACHE)
def ship_cell_job(job: CellJob) -> dict[str, Any]:
    """Ship one cell in a run of its own under the task's parent run (in a worker process)."""
    mlflow.set_tracking_uri(job.tracking_uri)
    mlflow.set_experiment(experiment_id=job.experiment_id)
    task_ = get_task(job.task_name)
    prepared = task_.prepare(job.config)  # the parent prepared it: read from the cache
    datasets = split_datasets(prepared)
    shipment = Shipment(
        task_, prepared, job.profile, Path(job.work_dir), job.register, job.training_profile, datasets
    )
    return ship_cell_run(shipment, job.profile.tasks[job.task_name], job.cell, job.parent_run_id)


def submit_cells(jobs: list[CellJob]) -> list[PrefectFuture]:
    """Hand every cell to the flow's task runner; they start as its workers come free."""
    return [ship_cell_job.submit(job) for job in jobs]


def collect_cells(futures: list[PrefectFuture]) -> list[dict[str, Any]]:
    """Wait for the submitted cells and return their rows in the cells' order."""
    wait(futures)
    return [future.result() for future in futures]
