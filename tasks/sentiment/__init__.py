"""The sentiment task (see README.md beside this file)."""

from tasks.sentiment.task import TASK

__all__ = ["TASK"]
