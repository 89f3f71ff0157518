"""Tasks, found by name through the ``seqops.tasks`` entry points (see ``tasks.common.plugins``)."""

from __future__ import annotations

from tasks.common.base import Codec, DataConfig, PreparedData, Task
from tasks.common.errors import BundleError, DataSourceError, InvalidRow, SeqopsError
from tasks.common.plugins import PluginError, PluginRegistry

TASKS: PluginRegistry[Task] = PluginRegistry("seqops.tasks", "task", Task, "tasks", "TASK")


def get_task(name: str) -> Task:
    """Return the task registered as ``name``.

    Raises:
        PluginError: (a ``KeyError``) naming the registered tasks, if ``name`` is unknown.
    """
    return TASKS.get(name)


def task_names() -> list[str]:
    """The names of every registered task, sorted."""
    return TASKS.names()


__all__ = [
    "BundleError",
    "Codec",
    "DataConfig",
    "DataSourceError",
    "InvalidRow",
    "PluginError",
    "PreparedData",
    "SeqopsError",
    "TASKS",
    "Task",
    "get_task",
    "task_names",
]
