"""How failures reach people: one clear line, no traceback unless asked for, no credentials ever.

- An expected failure (a ``SeqopsError``: bad setting, input, output, bundle, data source, an MLflow
  outage) is its message alone, in the terminal and in every log, Prefect's included.
- Anything else is a bug or an outage nobody foresaw: the command prints one line saying so, and the
  traceback only with ``--debug`` or ``SEQOPS_DEBUG=1``. Runs started by a Prefect worker keep it, as
  it is the only trace their operator gets.
- Every log record and every printed message has the credentials of its URIs masked
  (``serving.redaction``); MLflow's own printed run links are switched off when the tracking URI
  carries a password.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from serving.redaction import mask_credentials
from tasks import SeqopsError

DEBUG_VARIABLE = "SEQOPS_DEBUG"
_policy = {"installed": False, "tracebacks": True}


def debugging() -> bool:
    """Whether the user asked for tracebacks (``--debug`` or ``SEQOPS_DEBUG=1``)."""
    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in {"1", "true", "yes", "on"}


def install_log_hygiene(tracebacks: bool | None = None) -> None:
    """Mask credentials in every log record of this process, and drop expected failures' tracebacks.

    Args:
        tracebacks: Keep the tracebacks of unexpected failures in log records (``None``: as before;
            the first call defaults to keeping them).
    """
    if tracebacks is not None:
        _policy["tracebacks"] = tracebacks
    if _policy["installed"]:
        return
    _policy["installed"] = True
    make_record = logging.getLogRecordFactory()

    def hygienic_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return _scrub(make_record(*args, **kwargs))

    logging.setLogRecordFactory(hygienic_record)


def _scrub(record: logging.LogRecord) -> logging.LogRecord:
    try:
        message = record.getMessage()
    except Exception:  # a malformed call; logging reports it itself when the record is formatted
        return record
    masked = mask_credentials(message)
    if masked != message:
        record.msg, record.args = masked, None
    error = record.exc_info[1] if record.exc_info else None
    if error is not None:
        if isinstance(error, SeqopsError) or not (_policy["tracebacks"] or debugging()):
            record.exc_info = None  # the message (which names the error) says it all
        else:
            record.exc_text = mask_credentials("".join(traceback.format_exception(error)).rstrip())
    return record


def describe_failure(error: BaseException) -> tuple[str, str, int]:
    """The label, one-line message and exit status a command reports for ``error``."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted", "run the same command again to resume where it stopped", 130
    if isinstance(error, SeqopsError):
        label, message, code = error.label, str(error), error.exit_code
    else:
        label, code = "unexpected error", 1
        message = (
            f"{type(error).__name__}: {error} (run again with --debug or {DEBUG_VARIABLE}=1 to see where)"
        )
    return label, " ".join(mask_credentials(message).split()), code


def print_traceback(error: BaseException) -> None:
    """The full traceback on stderr, credentials masked (for ``--debug``)."""
    sys.stderr.write(mask_credentials("".join(traceback.format_exception(error))))


def guard_commands(report: Callable[[str, str], None]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command so that any failure ends it with ``report(label, message)`` and an exit status.

    Args:
        report: Prints one labelled line (the command line's console).
    """
    import functools

    import typer

    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except (typer.Exit, typer.Abort):
                raise
            except (Exception, KeyboardInterrupt) as error:
                if debugging() and not isinstance(error, KeyboardInterrupt):
                    print_traceback(error)
                label, message, code = describe_failure(error)
                report(label, message)
                raise typer.Exit(code) from None

        return run

    return decorate
