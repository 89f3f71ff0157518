"""The failures seqops expects, each explained in one line: what is wrong, where, and what to do.

A ``SeqopsError`` reaches a user as its message alone, never as a traceback (``--debug`` or
``SEQOPS_DEBUG=1`` shows one); anything else is a bug or an outage nobody foresaw. ``InvalidRow`` is
not one of them: it never ends a job, it becomes the row's error record.
"""

from __future__ import annotations

from pydantic import ValidationError


def first_line(error: BaseException) -> str:
    """The first line of an error's message (onnxruntime's span several lines), or its type's name.

    Args:
        error: Any exception.

    Returns:
        One line that can go inside a seqops message.
    """
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class SeqopsError(Exception):
    """A failure seqops expects; its message says what is wrong, which file or field, and what to do.

    Attributes:
        label: The kind of problem, printed before the message.
        exit_code: The command's exit status: 2 for what the user can fix (invocation, setting, input,
            output, bundle), 1 for a service that did not answer.
    """

    label = "error"
    exit_code = 2


class DataSourceError(SeqopsError, RuntimeError):
    """No configured data source could be read; the message names every alternative."""

    label = "data error"


class BundleError(SeqopsError, ValueError):
    """A model bundle is incomplete or unreadable; the message names the file."""

    label = "bundle error"


class InvalidRow(ValueError):
    """An input row that cannot be predicted; the message is the reason written to the error file."""


def describe_validation(error: ValidationError, prefix: str = "") -> str:
    """A pydantic error as ``field.path: message`` parts, joined by semicolons."""
    parts = []
    for entry in error.errors():
        field = ".".join([prefix, *map(str, entry["loc"])]).strip(".")
        parts.append(f"{field}: {entry['msg']}" if field else entry["msg"])
    return "; ".join(parts)
