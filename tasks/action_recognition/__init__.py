"""The action recognition task (see README.md beside this file)."""

from tasks.action_recognition.task import TASK

__all__ = ["TASK"]
