"""The text generation task (see README.md beside this file)."""

from tasks.text_generation.task import TASK

__all__ = ["TASK"]
