"""One trial of a ``seqops tune`` study: draw settings, train on the training split, score on validation.

A trial runs as a Prefect task, on whichever Dask worker is free; it reaches the study through its
database and logs a nested MLflow run under the study's parent run. It never reads the test split.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import optuna
import pytorch_lightning as pl
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from pydantic import ValidationError

from flows.config import TaskSettings
from flows.search_space import Dimension, with_values
from flows.studies import open_storage, sampler_and_pruner
from flows.tracker import tracker
from flows.tracking import EpochMetricsToMlflow
from models.train import train
from tasks import get_task
from tasks.common.errors import describe_validation


@dataclass(frozen=True)
class TrialSpec:
    """What a worker needs to run one trial (plain values: it travels to Dask workers).

    Attributes:
        study: The Optuna study's name.
        storage: The study database's URL.
        tracking_uri: MLflow's tracking URI.
        experiment_id: The task's MLflow experiment.
        parent_run_id: The study's parent run.
        task_name: The tuned task.
        settings: The profile's ``data``, ``model`` and ``train`` settings of the task.
        space: The dimensions searched, as plain dicts.
        data_dir: Local data folder, or ``None``.
        cache_dir: Prepared-data cache.
        num_threads: Torch threads per trial (the cores shared among the workers); ``None``: the profile's.
        objective: The validation metric the study optimises, and which way (``max`` or ``min``).
        deadline: Epoch seconds after which no trial starts (``None``: no limit).
    """

    study: str
    storage: str
    tracking_uri: str
    experiment_id: str
    parent_run_id: str
    task_name: str
    settings: dict[str, dict[str, Any]]
    space: dict[str, dict[str, Any]]
    data_dir: str | None
    cache_dir: str
    num_threads: int | None
    deadline: float | None
    objective: tuple[str, str]


class PruneOnValidation(pl.Callback):
    """Reports a validation metric to an Optuna trial after each epoch; stops a hopeless one.

    Args:
        trial: The trial being trained.
        metric: The metric the study optimises (a name the network's module logs, such as ``val_loss``).
        better: ``max`` or ``min``: which of its values is best.

    Attributes:
        best: The best value the metric reached so far (the trial's score).
    """

    def __init__(self, trial: optuna.Trial, metric: str, better: str):
        self.trial, self.metric, self.better = trial, metric, better
        self.best: float | None = None

    def on_validation_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Report this epoch's score; raise ``optuna.TrialPruned`` when the pruner says so.

        Raises:
            ValueError: When the network logs no such metric (naming those it logs).
        """
        if self.metric not in trainer.callback_metrics:
            logged = sorted(k for k in trainer.callback_metrics if k.startswith("val_"))
            raise ValueError(f"--objective {self.metric}: the network logs no such metric; it logs {logged}")
        score = float(trainer.callback_metrics[self.metric])
        pick = max if self.better == "max" else min
        self.best = score if self.best is None else pick(self.best, score)
        self.trial.report(score, step=trainer.current_epoch)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"epoch {trainer.current_epoch}: {self.metric} {score:.4f}")


@task(name="tune-trial", cache_policy=NO_CACHE)
def run_trial(spec: TrialSpec, seed: int) -> dict[str, Any]:
    """Run one trial of the study (none once the deadline has passed).

    Args:
        spec: The study and the settings.
        seed: The sampler's seed for this trial's draw (trials drawn at once must not draw alike).

    Returns:
        Its row: trial number, state, validation score, epochs, seconds and the drawn settings.
    """
    if spec.deadline is not None and time.time() > spec.deadline:
        return {"state": "not started: --timeout reached"}
    mlflow.set_tracking_uri(spec.tracking_uri)
    study = optuna.load_study(
        study_name=spec.study,
        storage=open_storage(spec.storage),
        **sampler_and_pruner(seed, spec.settings["train"]["max_epochs"]),
    )
    row: dict[str, Any] = {}
    study.optimize(lambda trial: _objective(spec, trial, row), n_trials=1, catch=(Exception,))
    finished = study.trials[row["trial"]] if "trial" in row else None
    row["state"] = finished.state.name.lower() if finished else "failed"
    get_run_logger().info("%s trial %s: %s", spec.task_name, row.get("trial"), _summary(row))
    return row


def _objective(spec: TrialSpec, trial: optuna.Trial, row: dict[str, Any]) -> float:
    """The trial's validation score; a failure's reason goes into its row (Optuna marks it failed)."""
    row["trial"] = trial.number
    try:
        return _train_trial(spec, trial, row)
    except optuna.TrialPruned:
        raise
    except ValidationError as error:  # drawn values the settings refuse (a space that allows them)
        row["error"] = describe_validation(error)
        raise
    except Exception as error:
        row["error"] = f"{type(error).__name__}: {error}"
        raise


def _train_trial(spec: TrialSpec, trial: optuna.Trial, row: dict[str, Any]) -> float:
    values = {key: Dimension.model_validate(d).suggest(trial, key) for key, d in spec.space.items()}
    row.update(values)
    task_ = get_task(spec.task_name)
    drawn = with_values(spec.settings, values)
    settings = TaskSettings.model_validate(drawn)
    config = task_.config(data_dir=spec.data_dir, cache_dir=spec.cache_dir, **drawn["data"])
    threads = {"num_threads": spec.num_threads} if spec.num_threads else {}
    train_config = settings.train.model_copy(update=threads)
    prepared = task_.prepare(config)
    with mlflow.start_run(
        run_name=f"trial {trial.number}",
        experiment_id=spec.experiment_id,
        parent_run_id=spec.parent_run_id,
        tags={
            "study": spec.study,
            "trial": str(trial.number),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
        },
    ):
        tracker.log_params(
            {f"{s}.{k}": v for s in ("model", "train") for k, v in drawn[s].items()}
            | {f"data.{k}": v for k, v in drawn["data"].items()}
        )
        scorer = PruneOnValidation(trial, *spec.objective)
        with tempfile.TemporaryDirectory(prefix="seqops-trial-") as checkpoints:
            try:
                fit = train(
                    task_.family,
                    prepared,
                    settings.model,
                    train_config,
                    Path(checkpoints),
                    callbacks=[EpochMetricsToMlflow(), scorer],
                )
            except optuna.TrialPruned as pruned:  # the run ends FINISHED: pruning is the pruner's work
                tracker.set_tag("trial_state", f"pruned at {pruned}")
                row["pruned_at"] = str(pruned)
                stopped: optuna.TrialPruned | None = pruned
            else:
                stopped = None
                row.update({"value": scorer.best, "epochs": fit.epochs, "seconds": round(fit.seconds, 1)})
                best = {f"best_{fit.monitor}": fit.best_score, f"best_{scorer.metric}": scorer.best}
                tracker.log_metrics(best | {"train_seconds": fit.seconds})
                tracker.set_tag("trial_state", "complete")
    if stopped is not None:
        raise stopped
    return scorer.best


def _summary(row: dict[str, Any]) -> str:
    if "value" in row:
        return f"{row['state']}, validation {row['value']:.4f} after {row['epochs']} epochs"
    return row["state"] + (f" ({row['error']})" if "error" in row else "")
