"""Pipeline profiles: typed, validated before any work starts, each error naming its field."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flows.search_space import Dimension
from models.config import Cell, ModelConfig, TrainConfig
from tasks import DataConfig, SeqopsError, get_task
from tasks.common.errors import describe_validation

PROFILES_DIR = Path(__file__).parent / "profiles"


class ConfigError(SeqopsError, ValueError):
    """A profile or setting is invalid; the message names the file or field."""

    label = "configuration error"


def read_yaml(path: Path, what: str) -> dict[str, Any]:
    """A YAML file that holds a mapping (a profile, deployments).

    Args:
        path: The file.
        what: What the file is, for messages (``profile``, ``deployments file``).

    Raises:
        ConfigError: Naming the file (and the line of a syntax error) when it cannot be read, is not
            YAML, or does not hold a mapping.
    """
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise ConfigError(f"{what} {path} cannot be read: {reason}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError(f"{what} {path} is not valid YAML{where}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{what} {path} is nested too deeply to be a {what}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{what} {path} must hold a mapping of settings, not a {type(raw).__name__}")
    return raw


class TaskSettings(BaseModel):
    """Data, network and training settings of one task.

    Attributes:
        search_space: Entries replacing (or, when null, removing) the task's own ``search_space`` in
            ``seqops tune``.
    """

    model_config = ConfigDict(extra="forbid")

    data: dict[str, Any] = {}
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    search_space: dict[str, Dimension | None] = {}


class Profile(BaseModel):
    """A named set of settings for a pipeline run.

    Attributes:
        name: Profile name (``default``, ``smoke``...).
        cells: Recurrent cells trained for each task.
        parity_tolerance: Largest PyTorch-vs-onnxruntime difference an export may show.
        quantize: ``int8`` adds a dynamically quantised variant to each bundle if it passes the gate.
        int8_tolerance: The gate: largest loss of the promotion metric on the test split, in points
            (0.01 of a metric in [0, 1]; see ``Task.metric_points``).
        seeds: Times each cell is trained (seeds ``train.seed``, ``+1``...): tables report the mean ±
            standard deviation on test, and the seed best on validation is registered.
        tasks: Settings per registered task.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    cells: list[Cell] = Field(default_factory=lambda: ["rnn", "lstm", "gru"], min_length=1)
    parity_tolerance: float = Field(1e-4, gt=0)
    quantize: Literal["int8"] | None = "int8"
    int8_tolerance: float = Field(0.5, ge=0)
    seeds: int = Field(1, ge=1, le=20)
    tasks: dict[str, TaskSettings]


def load_profile(profile: str, cells: list[str] | None = None) -> Profile:
    """Load a profile by name (``flows/profiles/<name>.yaml``) or from a YAML path.

    Args:
        profile: Built-in profile name or path of a YAML file.
        cells: Recurrent cells to train instead of the profile's own list.

    Raises:
        ConfigError: If the file is missing or not YAML, or a field is unknown or invalid (named).
    """
    path = Path(profile) if profile.endswith((".yaml", ".yml")) else PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"profile '{profile}' not found; built-in profiles: {known}, or give a .yaml path")
    raw = read_yaml(path, "profile")
    try:
        return Profile.model_validate({**raw, "name": path.stem, **({"cells": cells} if cells else {})})
    except ValidationError as error:
        raise ConfigError(f"profile {path}: {describe_validation(error)}") from None


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
    from models.family import get_family  # torch: only once a profile is checked for a run
    from models.hardware import HardwareError, check_hardware

    try:
        check_hardware(profile.tasks[task_name].train)
    except HardwareError as error:
        raise ConfigError(f"profile '{profile.name}': tasks.{task_name}.train.{error}") from None
    try:
        get_family(task.family).options(profile.tasks[task_name].model)
    except KeyError as error:
        raise ConfigError(f"task '{task_name}': {error.args[0]}") from None
    except ValidationError as error:
        where = f"tasks.{task_name}.model.options"
        raise ConfigError(f"profile '{profile.name}': {describe_validation(error, where)}") from None
    values = {"data_dir": data_dir, "cache_dir": work_dir / "cache", **profile.tasks[task_name].data}
    try:
        return task.config(**values)
    except ValidationError as error:
        raise ConfigError(
            f"profile '{profile.name}': {describe_validation(error, f'tasks.{task_name}.data')}"
        ) from None


def default_data_dir() -> Path | None:
    """``SEQOPS_DATA_DIR``, else ``../shared/data`` when it exists, else none (the Hub is used)."""
    configured = os.environ.get("SEQOPS_DATA_DIR")
    if configured:
        return Path(configured)
    shared = Path("../shared/data")
    return shared if shared.is_dir() else None


def check_work_dir(work_dir: str) -> None:
    """Refuse a work folder that is a file or lies under one, before anything is created in it.

    Raises:
        ConfigError: Naming the file in the way.
    """
    path = Path(work_dir).absolute()
    blocking = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise ConfigError(
            f"--work-dir {work_dir}: {blocking} is a file; give a folder for caches and bundles"
        )


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
    check_work_dir(work_dir)
    settings = load_profile(profile, cells)
    names = tasks or list(settings.tasks)
    if not names:
        raise ConfigError(f"profile '{settings.name}' has no tasks")
    folder = Path(data_dir) if data_dir else default_data_dir()
    return settings, {name: data_config(settings, name, folder, Path(work_dir)) for name in names}


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs as a dict; the model's task checks and converts the values.

    Raises:
        ConfigError: For a pair without ``=`` or a key given twice.
    """
    options: dict[str, str] = {}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"--option {pair!r}: write it as KEY=VALUE, e.g. --option beam_width=5")
        if key.strip() in options:
            raise ConfigError(f"--option {key.strip()} is given twice")
        options[key.strip()] = value.strip()
    return options
