"""Several tasks shipped at once (``seqops pipeline --parallel N`` with more than one task).

Each task runs whole in a process of Prefect's process-pool task runner: the task run of a sequential
pipeline (``flows.task_run.run_task``: prepare, baselines, its cells one after another, champion gate)
as the subflow of a Prefect task. Tasks start in the profile's order as processes come free, and each
trains on its share of the cores.

Whole tasks keep the cores busier than a task's cells at once: three cells on two cores leave one
core idle while the last trains, and a task's data preparation, baselines and champion gate run
beside another task's training rather than alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.futures import wait

from flows import task_run
from flows.config import Profile
from flows.parallel_cells import shared_threads
from tasks import DataConfig


@dataclass(frozen=True)
class TaskJob:
    """What a worker process needs to ship one task (picklable).

    Attributes:
        task_name: The task.
        profile: The run's profile, the task's threads cut to its share of the cores.
        config: The task's validated data settings.
        work_dir: Folder for caches, checkpoints and bundles.
        register: Register the shipped models and run the champion gate.
        tracking_uri: MLflow's tracking URI.
    """

    task_name: str
    profile: Profile
    config: DataConfig
    work_dir: str
    register: bool
    tracking_uri: str


def tasks_at_once(
    profile: Profile, configs: dict[str, DataConfig], work_dir: Path, register: bool, parallel: int
) -> list[TaskJob]:
    """One job per task, in the profile's order, each on its share of the cores.

    Args:
        profile: The run's profile.
        configs: Each task's validated data settings.
        work_dir: Folder for caches, checkpoints and bundles.
        register: Register the shipped models and run the champion gate.
        parallel: Tasks shipped at once.

    Returns:
        The jobs ``ship_tasks`` takes.
    """
    at_once = min(parallel, len(configs))
    uri = mlflow.get_tracking_uri()
    # A new SQLite store is created here, once: workers creating it at once race on its schema migrations.
    MlflowClient(uri).search_experiments(max_results=1)
    return [
        TaskJob(name, shared_threads(profile, name, at_once), config, str(work_dir.resolve()), register, uri)
        for name, config in configs.items()
    ]


@task(name="ship-task", task_run_name="{job.task_name}: ship", cache_policy=NO_CACHE)
def ship_task_job(job: TaskJob) -> dict[str, Any]:
    """Run one task's subflow (in a worker process)."""
    mlflow.set_tracking_uri(job.tracking_uri)
    # Through its module: the task runner pickles this function by value, and a flow object pickled
    # with it would lose the names its parameters' annotations refer to.
    return task_run.run_task(job.task_name, job.profile, job.config, Path(job.work_dir), job.register)


@flow(name="seqops-tasks-at-once", flow_run_name="tasks at once")
def ship_tasks(jobs: list[TaskJob]) -> list[dict[str, Any]]:
    """Ship every task on the flow's task runner; their summaries come back in the tasks' order."""
    futures = [ship_task_job.submit(job) for job in jobs]
    wait(futures)
    return [future.result() for future in futures]
