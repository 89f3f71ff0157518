"""What a task hands the generic layers beyond its codec: diagnostics, input readers, inference options.

``flows/`` logs a task's diagnostics to MLflow without knowing what they show, and ``serving/`` reads
whole-file inputs and checks inference options through these types, never by asking which task it
serves.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from tasks.common.errors import InvalidRow, SeqopsError

# Predicts raw rows with the exported model as serving runs it: ``predict(rows, **options)``.
RowPredictor = Callable[..., list[dict[str, Any]]]


@dataclass
class Figure:
    """A plot to log with a run, as ``name`` (a file name such as ``confusion_matrix.png``)."""

    name: str
    figure: Any  # a matplotlib Figure; the logger closes it


@dataclass
class Table:
    """A table to log with a run, as ``name`` (a ``.json`` file name); columns of equal length."""

    name: str
    columns: dict[str, list[Any]]


Artifact = Figure | Table


@dataclass
class Evaluation:
    """A trained model's test-split evaluation, as a task's ``diagnostics`` hook receives it.

    Attributes:
        codec: The model's codec.
        split: The test split (encoded, as ``Task.prepare`` wrote it).
        predictions: The model's decoded predictions, one per reference.
        references: What ``Task.metrics`` scored them against.
        predict: Predicts raw rows with the exported model (other options, fewer rows).
        title: A caption naming the task and cell, for plot titles.
    """

    codec: Any
    split: Any
    predictions: list[dict[str, Any]]
    references: Any
    predict: RowPredictor
    title: str


@dataclass(frozen=True)
class WholeFileReader:
    """Reads one whole input file as a single row (``seqops predict --reader NAME``).

    Attributes:
        description: What the file holds, for help and error messages.
        formats: Input formats it reads (``csv``, ``jsonl``, ``parquet``).
        read: ``read(file bytes, codec)``: the row to predict, or an ``InvalidRow`` with the reason.
    """

    description: str
    formats: tuple[str, ...]
    read: Callable[[bytes, Any], dict[str, Any] | InvalidRow]


class BaselineSkipped(SeqopsError):
    """A classical baseline that does not run on this data (too large, say); the message says why."""


class InvalidOptions(SeqopsError):
    """Inference options the model's task does not take, or with a bad value."""


class NoOptions(BaseModel):
    """A task that takes no inference options."""

    model_config = ConfigDict(extra="forbid")


def check_options(schema: type[BaseModel], options: dict[str, Any], task: str) -> dict[str, Any]:
    """Validate inference options (strings from a command line are converted) against a task's schema.

    Returns:
        The options that were set, typed.

    Raises:
        InvalidOptions: Naming the option and what is wrong, or the options the task takes.
    """
    try:
        typed = schema.model_validate(options)
    except ValidationError as error:
        problem = error.errors()[0]
        name = ".".join(str(part) for part in problem["loc"]) or "options"
        takes = ", ".join(schema.model_fields) or "none"
        reason = "not an option of this task" if problem["type"] == "extra_forbidden" else problem["msg"]
        raise InvalidOptions(f"option {name}: {reason} (task '{task}' takes: {takes})") from None
    return typed.model_dump(exclude_unset=True)
