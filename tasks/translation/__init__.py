"""The translation task (see README.md beside this file)."""

from tasks.translation.task import TASK

__all__ = ["TASK"]
