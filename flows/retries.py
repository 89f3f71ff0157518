"""MLflow calls that survive a server restart: retries with backoff, and runs that end cleanly."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import mlflow
from mlflow import ActiveRun
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect.states import State

from serving.redaction import mask_credentials
from tasks import SeqopsError

T = TypeVar("T")
# Errors a retry cannot fix; anything else (connection refused, 5xx, locked database) is retried.
PERMANENT_ERRORS = {
    "RESOURCE_DOES_NOT_EXIST",
    "RESOURCE_ALREADY_EXISTS",
    "INVALID_PARAMETER_VALUE",
    "BAD_REQUEST",
    "PERMISSION_DENIED",
    "UNAUTHENTICATED",
}
# Failures of this machine, not of the server: retrying only delays the error.
LOCAL_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)
log = logging.getLogger("seqops.tracking")


class TrackingUnavailable(SeqopsError, RuntimeError):
    """The MLflow server did not answer, even after the retries."""

    label = "tracking server unavailable"
    exit_code = 1


def transient(task_: Any, task_run: Any, state: State) -> bool:
    """A Prefect task's retry condition: retry unless retrying cannot help (an expected failure, a bug)."""
    error = state.result(raise_on_failure=False)
    if isinstance(error, SeqopsError):
        return error.exit_code != 2  # an outage may pass; a bad setting, input or bundle stays bad
    return not isinstance(error, ValueError | KeyError | TypeError)


def with_retries(
    call: Callable[[], T], what: str, attempts: int | None = None, backoff: float | None = None
) -> T:
    """Run an MLflow call, retrying transient failures with exponential backoff.

    The defaults (5 attempts, waits of 2, 4, 8 and 16 s: a server restart fits in them) come from
    ``SEQOPS_MLFLOW_ATTEMPTS`` and ``SEQOPS_MLFLOW_BACKOFF``. Each attempt also has MLflow's own HTTP
    retries (``MLFLOW_HTTP_REQUEST_MAX_RETRIES``, ``MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR``).

    Raises:
        TrackingUnavailable: Naming ``what`` after the last attempt fails (credentials masked).
        MlflowException: A permanent error (no such resource, permission denied), credentials masked.
    """
    attempts = attempts or int(os.environ.get("SEQOPS_MLFLOW_ATTEMPTS", "5"))
    backoff = backoff if backoff is not None else float(os.environ.get("SEQOPS_MLFLOW_BACKOFF", "2"))
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except (MlflowException, OSError) as error:
            if isinstance(error, LOCAL_ERRORS):
                raise
            if isinstance(error, MlflowException) and error.error_code in PERMANENT_ERRORS:
                raise _masked(error) from None
            if attempt == attempts:
                raise TrackingUnavailable(  # from None: the cause's message may hold the URI's password
                    mask_credentials(
                        f"MLflow call failed after {attempts} attempts ({what}) at "
                        f"{mlflow.get_tracking_uri()}: {error}"
                    )
                ) from None
            log.warning("MLflow call failed (%s), retry %d/%d: %s", what, attempt, attempts - 1, error)
            time.sleep(backoff * 2 ** (attempt - 1))
    raise AssertionError("unreachable")


def _masked(error: MlflowException) -> MlflowException:
    """The same error, its message free of credentials (MLflow quotes the URL it called)."""
    message = mask_credentials(error.message)
    return error if message == error.message else MlflowException(message, error_code=error.error_code)


@contextmanager
def tracked_run(
    run_name: str,
    nested: bool = False,
    run_id: str | None = None,
    system_metrics: bool = False,
    parent_run_id: str | None = None,
) -> Iterator[ActiveRun]:
    """An MLflow run that ends FINISHED, or FAILED when its block raises.

    With ``run_id``, that (earlier) run is reopened instead of a new one started; ``system_metrics``
    samples CPU and memory while it runs (MLflow's system metrics); ``parent_run_id`` nests it under a
    run that another process holds open.

    Unlike ``mlflow.start_run``'s own exit, a server that cannot record the failure never hides the
    error that ended the run (such as ``TrackingUnavailable``, which names what was being logged).
    """
    run = with_retries(
        lambda: mlflow.start_run(
            run_id=run_id,
            run_name=run_name,
            nested=nested,
            log_system_metrics=system_metrics or None,
            parent_run_id=parent_run_id,
        ),
        f"start run {run_name}",
    )
    run_id = run.info.run_id

    def end(status: str) -> None:
        # mlflow.end_run takes the run off its stack before it asks the server: a retry after a failed
        # attempt must end this run by id, not whichever run (the parent) is active by then.
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)
        else:
            MlflowClient().set_terminated(run_id, status)

    try:
        yield run
    except BaseException:
        try:
            end("FAILED")
        except (MlflowException, OSError) as error:
            log.warning("could not mark run %s FAILED: %s", run_id, error)
        raise
    with_retries(lambda: end("FINISHED"), f"end run {run_name}")
