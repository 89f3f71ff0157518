"""Task registry: one module per ML task, looked up by name."""

from __future__ import annotations

from tasks.action_recognition import TASK as ACTION_RECOGNITION
from tasks.base import Codec, DataConfig, PreparedData, Task
from tasks.errors import BundleError, DataSourceError, InvalidRow, SeqopsError
from tasks.forecasting import TASK as FORECASTING
from tasks.sentiment import TASK as SENTIMENT
from tasks.translation import TASK as TRANSLATION

REGISTRY: dict[str, Task] = {
    task.name: task for task in [SENTIMENT, FORECASTING, ACTION_RECOGNITION, TRANSLATION]
}


def get_task(name: str) -> Task:
    """Return the registered task called ``name``.

    Raises:
        KeyError: With the registered names, if ``name`` is unknown.
    """
    try:
        return REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown task '{name}'; registered tasks: {sorted(REGISTRY)}") from None


__all__ = [
    "BundleError",
    "Codec",
    "DataConfig",
    "DataSourceError",
    "InvalidRow",
    "PreparedData",
    "REGISTRY",
    "SeqopsError",
    "Task",
    "get_task",
]
