"""The forecasting task (see README.md beside this file)."""

from tasks.forecasting.task import TASK

__all__ = ["TASK"]
