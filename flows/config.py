"""Pipeline profiles: typed, validated before any work starts, each error naming its field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from models.config import Cell, ModelConfig, TrainConfig
from tasks import DataConfig, get_task

PROFILES_DIR = Path(__file__).parent / "profiles"


class ConfigError(ValueError):
    """A profile or setting is invalid; the message names the field."""


class TaskSettings(BaseModel):
    """Data, network and training settings of one task."""

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = {}
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()


class Profile(BaseModel):
    """A named set of settings for a pipeline run.

    Attributes:
        name: Profile name (``default``, ``smoke``...).
        cells: Recurrent cells trained for each task.
        parity_tolerance: Largest PyTorch-vs-onnxruntime difference an export may show.
        quantize: ``int8`` adds a dynamically quantised variant to each bundle if it passes the gate.
        int8_tolerance: The gate: largest loss of the promotion metric on the test split, in points
            (0.01 of accuracy, F1 or MASE; 1 BLEU).
        tasks: Settings per registered task.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    cells: list[Cell] = Field(default_factory=lambda: ["rnn", "lstm", "gru"], min_length=1)
    parity_tolerance: float = Field(1e-4, gt=0)
    quantize: Literal["int8"] | None = "int8"
    int8_tolerance: float = Field(0.5, ge=0)
    tasks: dict[str, TaskSettings]


def _describe(error: ValidationError, prefix: str) -> str:
    return "; ".join(
        f"{'.'.join([prefix, *map(str, e['loc'])]).strip('.')}: {e['msg']}" for e in error.errors()
    )


def load_profile(profile: str, cells: list[str] | None = None) -> Profile:
    """Load a profile by name (``flows/profiles/<name>.yaml``) or from a YAML path.

    Args:
        profile: Built-in profile name or path of a YAML file.
        cells: Recurrent cells to train instead of the profile's own list.

    Raises:
        ConfigError: If the file is missing, or a field is unknown or invalid (named in the message).
    """
    path = Path(profile) if profile.endswith((".yaml", ".yml")) else PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"profile '{profile}' not found; built-in profiles: {known}, or give a .yaml path")
    raw = yaml.safe_load(path.read_text()) or {}
    try:
        return Profile(**{**raw, "name": path.stem, **({"cells": cells} if cells else {})})
    except ValidationError as error:
        raise ConfigError(f"profile {path}: {_describe(error, '')}") from None
    except TypeError as error:
        raise ConfigError(f"profile {path}: {error}") from None


def data_config(profile: Profile, task_name: str, data_dir: Path | None, work_dir: Path) -> DataConfig:
    """Validated data settings of a task: the profile's, the data folder, and the cache under ``work_dir``.

    Raises:
        ConfigError: If the task is unknown or not in the profile, or a data field is invalid.
    """
    try:
        task = get_task(task_name)
    except KeyError as error:
        raise ConfigError(str(error.args[0])) from None
    if task_name not in profile.tasks:
        raise ConfigError(f"profile '{profile.name}' has no settings for task '{task_name}'")
    values = {"data_dir": data_dir, "cache_dir": work_dir / "cache", **profile.tasks[task_name].data}
    try:
        return task.config(**values)
    except ValidationError as error:
        raise ConfigError(
            f"profile '{profile.name}': {_describe(error, f'tasks.{task_name}.data')}"
        ) from None


def default_data_dir() -> Path | None:
    """``SEQOPS_DATA_DIR``, else ``../shared/data`` when it exists, else none (the Hub is used)."""
    configured = os.environ.get("SEQOPS_DATA_DIR")
    if configured:
        return Path(configured)
    shared = Path("../shared/data")
    return shared if shared.is_dir() else None


def resolve_run(
    profile: str, cells: list[str] | None, tasks: list[str] | None, data_dir: str | None, work_dir: str
) -> tuple[Profile, dict[str, DataConfig]]:
    """Validate everything a pipeline run needs, before any work starts.

    Args:
        profile: Built-in profile name or YAML path.
        cells: Cells to train instead of the profile's.
        tasks: Tasks to run (default: every task in the profile).
        data_dir: Local data folder (default: ``default_data_dir()``).
        work_dir: Folder for caches, checkpoints and bundles.

    Returns:
        The profile and each task's validated data settings.

    Raises:
        ConfigError: Naming the first invalid field.
    """
    settings = load_profile(profile, cells)
    names = tasks or list(settings.tasks)
    if not names:
        raise ConfigError(f"profile '{settings.name}' has no tasks")
    folder = Path(data_dir) if data_dir else default_data_dir()
    return settings, {name: data_config(settings, name, folder, Path(work_dir)) for name in names}
