"""``seqops tune``: an Optuna study of a task's settings, its trials run as Prefect tasks on Dask.

The study (TPE sampler, median pruning on the validation metric) lives in the tracking database, so
running the same ``--study`` again resumes it: finished trials count towards ``--trials``, and a trial
a kill interrupted is failed and drawn again. Its parent MLflow run holds a nested run per trial,
Optuna's plots and the best settings as a profile for ``seqops pipeline --profile``. Selection reads the
validation split only; the test split is left to that pipeline run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import optuna
from prefect import flow, get_run_logger

from flows.config import ConfigError, Profile, TaskSettings, read_yaml, resolve_run
from flows.failures import install_log_hygiene
from flows.retries import tracked_run
from flows.search_space import Dimension, check_keys, merged_space, with_values
from flows.studies import (
    absolute_sqlite,
    best_profile,
    open_storage,
    sampler_and_pruner,
    storage_url,
    study_figures,
    write_profile,
)
from flows.task_run import prepare_data
from flows.tracker import tracker
from flows.tracking import configure_tracking, git_commit
from flows.trials import TrialSpec, run_trial
from models.config import ModelConfig, TrainConfig
from serving.redaction import mask_credentials
from tasks import PreparedData, Task, get_task

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def validation_objective(
    task_: Task, prepared: PreparedData, settings: TaskSettings, objective: str | None
) -> tuple[str, str]:
    """The validation metric the study optimises and which value is best (``max`` or ``min``).

    Args:
        task_: The task.
        prepared: Its data (for the network's shape).
        settings: The settings the network is built with.
        objective: ``METRIC:max`` or ``METRIC:min``; ``None``: the metric the network family monitors.

    Raises:
        ConfigError: For an objective without its direction.
    """
    if objective is not None:
        return parse_objective(objective)
    from models.family import get_family

    family = get_family(task_.family)
    shape = prepared.codec.network_shape()
    module = family.build_module(family.build_network(shape, settings.model), shape, settings.train)
    return module.monitor, module.monitor_mode


def parse_objective(objective: str) -> tuple[str, str]:
    """``METRIC:max`` or ``METRIC:min`` as ``(metric, better)``.

    Raises:
        ConfigError: When the direction is missing or neither ``max`` nor ``min``.
    """
    metric, _, better = objective.rpartition(":")
    if not metric or better not in ("max", "min"):
        raise ConfigError(f"--objective {objective}: write it as METRIC:max or METRIC:min, e.g. val_loss:min")
    return metric, better


def task_space(task_: Task, settings: TaskSettings, cells: list[str]) -> dict[str, Dimension]:
    """The searched dimensions: the task's, the profile's changes, and the cell when several are given.

    Raises:
        ConfigError: Naming a key that is no setting of the task.
    """
    space = merged_space(task_.search_space, settings.search_space)
    if len(cells) > 1:
        space["model.cell"] = Dimension(choices=cells)
    fields = {
        "data": set(task_.config_model.model_fields) - {"data_dir", "cache_dir"},
        "model": set(ModelConfig.model_fields),
        "train": set(TrainConfig.model_fields),
    }
    try:
        check_keys(space, fields)
    except ValueError as error:
        raise ConfigError(f"task '{task_.name}': {error}") from None
    if not space:
        raise ConfigError(f"task '{task_.name}': the search space is empty; nothing to tune")
    return space


@flow(name="seqops-tune")
def tune(
    task_name: str,
    trials: int,
    cells: list[str] | None = None,
    profile: str = "default",
    study: str | None = None,
    timeout: float | None = None,
    storage: str | None = None,
    threads_per_trial: int | None = None,
    objective: str | None = None,
    data_dir: str | None = None,
    work_dir: str = ".seqops",
) -> dict[str, Any]:
    """Run (or resume) a study of ``trials`` trials in all; log it; write the best settings as a profile.

    Args:
        task_name: The task to tune.
        trials: Trials the study should hold (finished ones of an earlier run count).
        cells: Cells to choose among (default: the profile's).
        profile: Built-in profile name or YAML path: the settings not searched, and the search space.
        study: The study's name (default: ``<task>-<profile>``); an existing one is resumed.
        timeout: Seconds after which no further trial starts.
        storage: The studies' database URL (default: ``SEQOPS_STUDY_STORAGE`` or the tracking DB).
        threads_per_trial: Torch threads each trial uses (default: the profile's ``num_threads``).
        objective: ``METRIC:max|min``, the validation metric to optimise (default: the one the network
            family monitors; ``val_loss:min`` tells apart trials that a small validation split scores alike).
        data_dir: Local data folder.
        work_dir: Folder for caches; the best profile goes to ``<work_dir>/studies/<study>.yaml``.

    Returns:
        The study's name, parent run, best trial (number, validation score, settings), the rows of
        the trials run now, and the best profile's path.
    """
    install_log_hygiene()
    deadline = time.time() + timeout if timeout else None
    settings, configs = resolve_run(profile, cells, [task_name], data_dir, work_dir)
    task_ = get_task(task_name)
    task_settings = settings.tasks[task_name]
    space = task_space(task_, task_settings, list(settings.cells))
    base = task_settings.model_dump(mode="json", exclude={"search_space"})
    base["model"]["cell"] = settings.cells[0]
    # Workers on another machine, or in another folder, must find the same files: no relative paths.
    uri = absolute_sqlite(configure_tracking())
    url = absolute_sqlite(storage_url(uri, storage))
    name = study or f"{task_name}-{settings.name}"
    experiment_id = tracker.use_experiment(f"seqops-{task_name}", Path(work_dir))
    prepared = prepare_data(task_name, configs[task_name])  # cached once, before workers read it
    monitor, better = validation_objective(task_, prepared, TaskSettings.model_validate(base), objective)
    direction = "maximize" if better == "max" else "minimize"
    found = optuna.create_study(
        study_name=name,
        storage=open_storage(url),
        direction=direction,
        load_if_exists=True,
        **sampler_and_pruner(task_settings.train.seed, task_settings.train.max_epochs),
    )
    made_for = found.user_attrs.setdefault("objective", f"{monitor}:{better}")
    if made_for != f"{monitor}:{better}":  # scores of two objectives cannot be ranked together
        raise ConfigError(
            f"study '{name}' optimises {made_for}, not {monitor}:{better}; give another --study"
        )
    found.set_user_attr("objective", made_for)
    done = sum(t.state in FINISHED for t in found.trials)
    earlier = tracker.search_runs([experiment_id], f"tags.study = '{name}' and tags.seqops_kind = 'tune'")
    with tracked_run(f"tune {name}", run_id=earlier[0].info.run_id if earlier else None) as parent:
        tracker.set_tags(
            {
                "seqops_kind": "tune",
                "study": name,
                "study_storage": mask_credentials(url),
                "monitor": monitor,
                "profile": settings.name,
                "git_commit": git_commit(),
            }
        )
        tracker.log_dict(
            {k: d.model_dump(exclude_defaults=True) for k, d in space.items()}, "search_space.json"
        )
        get_run_logger().info(
            "%s: study %s holds %d finished trials; running %d more",
            task_name,
            name,
            done,
            max(0, trials - done),
        )
        spec = TrialSpec(
            name,
            url,
            uri,
            experiment_id,
            parent.info.run_id,
            task_name,
            base,
            {k: d.model_dump() for k, d in space.items()},
            str(configs[task_name].data_dir.resolve()) if configs[task_name].data_dir else None,
            str(configs[task_name].cache_dir.resolve()),
            threads_per_trial,
            deadline,
            (monitor, better),
        )
        seeds = range(
            task_settings.train.seed + len(found.trials),
            task_settings.train.seed + len(found.trials) + max(0, trials - done),
        )
        futures = [run_trial.submit(spec, seed) for seed in seeds]  # one seed each: parallel draws differ
        rows = [future.result() for future in futures]
        return _report(
            name, url, base, settings, task_name, monitor, rows, parent.info.run_id, Path(work_dir)
        )


def _report(
    name: str,
    url: str,
    base: dict[str, Any],
    settings: Profile,
    task_name: str,
    monitor: str,
    rows: list[dict[str, Any]],
    run_id: str,
    work_dir: Path,
) -> dict[str, Any]:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    states = [t.state.name.lower() for t in study.trials]
    tracker.log_metrics({f"trials_{state}": states.count(state) for state in set(states)})
    result: dict[str, Any] = {
        "study": name,
        "parent_run_id": run_id,
        "monitor": monitor,
        "direction": study.direction.name.lower(),
        "trials": rows,
    }
    if not any(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials):
        tracker.set_tag("best_trial", "none completed")
        return result
    best = study.best_trial
    tracker.log_metrics({f"best_{monitor}": best.value})
    tracker.set_tags({"best_trial": best.number, **{f"best.{k}": v for k, v in best.params.items()}})
    for artifact, figure in study_figures(study).items():
        tracker.log_figure(figure, artifact)
    profile_text = best_profile(
        settings.model_dump(mode="json"), task_name, with_values(base, best.params), name
    )
    tracker.log_text(profile_text, "best_profile.yaml")
    path = write_profile(profile_text, work_dir, name)
    read_yaml(path, "profile")  # what was written reads back
    return result | {
        "best": {"trial": best.number, "value": best.value, "params": best.params},
        "profile": str(path),
    }


def default_threads(workers: int) -> int:
    """Torch threads per trial when ``workers`` trials share this machine's cores."""
    return max(1, (os.cpu_count() or 1) // workers)
