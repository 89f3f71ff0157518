"""Where ``seqops tune`` keeps its Optuna studies, and what a finished study leaves in MLflow.

A study lives in the tracking database itself (SQLite by default, PostgreSQL on the servers): Optuna's
tables (``studies``, ``trials``...) sit beside MLflow's, so a killed study resumes from the same place
the runs are. MLflow's Alembic owns the database's ``alembic_version`` row, so Optuna's own schema
check is skipped: Optuna is pinned, and its schema is the one that created the tables.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml

from flows.config import ConfigError
from serving.redaction import mask_credentials

STORAGE_VARIABLE = "SEQOPS_STUDY_STORAGE"
DATABASE_SCHEMES = ("sqlite:", "postgresql", "mysql")
HEARTBEAT_SECONDS = 30  # a trial whose process died is failed after three missed heartbeats


def storage_url(tracking_uri: str, storage: str | None) -> str:
    """The database URL of the studies: ``storage``, else ``SEQOPS_STUDY_STORAGE``, else the tracking DB.

    Raises:
        ConfigError: When MLflow is tracked over HTTP and no database URL is given.
    """
    url = storage or os.environ.get(STORAGE_VARIABLE) or tracking_uri
    if not url.startswith(DATABASE_SCHEMES):
        raise ConfigError(
            f"MLflow is tracked at {mask_credentials(url)}, not in a database: give the studies one with "
            f"--storage or {STORAGE_VARIABLE} (e.g. the PostgreSQL URL the MLflow server uses)"
        )
    return url


def absolute_sqlite(url: str) -> str:
    """A SQLite URL with a relative path (``sqlite:///mlflow.db``) made absolute; other URLs unchanged."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        return prefix + str(Path(url.removeprefix(prefix)).resolve())
    return url


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's storage in the database at ``url`` (with heartbeats, so dead trials are failed)."""
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite:") else {}
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # each trial is logged once, by seqops
    # Heartbeats and the matplotlib plots are "experimental" in name only, unchanged for years.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=engine,
        skip_compatibility_check=True,
        heartbeat_interval=HEARTBEAT_SECONDS,
        grace_period=3 * HEARTBEAT_SECONDS,
    )


def sampler_and_pruner(seed: int, max_epochs: int) -> dict[str, Any]:
    """TPE (with the constant liar, for parallel trials) and median pruning.

    A trial is compared with the median of earlier trials at the same epoch only after a fifth of
    its epochs (at least two): early validation scores are too noisy to stop on.
    """
    return {
        "sampler": optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True),
        "pruner": optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=max(2, max_epochs // 5)),
    }


def study_figures(study: optuna.Study) -> dict[str, Any]:
    """Optuna's plots of a study as matplotlib figures, by artifact name (those it has the trials for)."""
    from optuna.visualization import matplotlib as plots

    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    drawers = {"optimization_history.png": plots.plot_optimization_history}
    varied = {
        name for t in finished for name in t.params if len({str(u.params.get(name)) for u in finished}) > 1
    }
    if len(finished) >= 2 and varied:
        drawers["parallel_coordinate.png"] = plots.plot_parallel_coordinate
        drawers["param_importances.png"] = plots.plot_param_importances
    figures = {}
    for name, draw in drawers.items():
        axes = draw(study)
        axes = axes.flat[0] if hasattr(axes, "flat") else axes
        figure = axes.get_figure()
        figure.set_size_inches(10, 6)
        figure.tight_layout()
        figures[name] = figure
    return figures


def best_profile(
    base: dict[str, Any], task_name: str, settings: dict[str, dict[str, Any]], study: str
) -> str:
    """A profile YAML that trains a study's best trial: ``seqops pipeline --profile`` accepts it.

    Args:
        base: The profile the study tuned (its top-level settings are kept).
        task_name: The tuned task: the profile holds it alone.
        settings: The best trial's ``data``, ``model`` and ``train`` settings.
        study: The study's name, for the header.
    """
    cell = settings["model"].get("cell")
    profile = {k: v for k, v in base.items() if k not in {"name", "tasks", "cells"}}
    profile["cells"] = [cell] if cell else base.get("cells")
    profile["tasks"] = {task_name: {section: values for section, values in settings.items() if values}}
    header = f"# The best trial of seqops tune study '{study}', chosen on validation only.\n"
    return header + yaml.safe_dump(profile, sort_keys=False)


def write_profile(text: str, work_dir: Path, study: str) -> Path:
    """Save a best profile as ``<work_dir>/studies/<study>.yaml``; returns its path."""
    path = work_dir / "studies" / f"{study}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path
