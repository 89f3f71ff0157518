"""What every ``seqops`` command shares: the consoles, one-line failures, common options, Prefect defaults."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from flows.failures import guard_commands

console = Console(width=None if sys.stdout.isatty() else 160)
error_console = Console(stderr=True, soft_wrap=True)  # soft wrap: an error stays one line in a log


def report_failure(label: str, message: str) -> None:
    """Print a failure as one line on stderr: its label in red, then the message (never markup)."""
    error_console.print(Text.assemble((f"{label}:", "red"), " ", message))


guarded = guard_commands(report_failure)

TaskOption = Annotated[list[str] | None, typer.Option("--task", "-t", help="Task name; repeat for several.")]
CellOption = Annotated[
    list[str] | None, typer.Option("--cell", "-c", help="rnn, lstm or gru; repeat for several.")
]
ProfileOption = Annotated[
    str, typer.Option(help="Built-in profile (default, smoke, benchmark, gpu) or a YAML path.")
]
DataDirOption = Annotated[
    str | None, typer.Option(help="Local data folder (default: SEQOPS_DATA_DIR or ../shared/data).")
]
WorkDirOption = Annotated[str, typer.Option(help="Folder for caches, checkpoints and bundles.")]
ParallelOption = Annotated[
    int,
    typer.Option(
        min=1,
        help="Trainings at once, each in a process (at most the cores): whole tasks when there are "
        "several, else the task's cells.",
    ),
]


def embedded_defaults(work_dir: str) -> None:
    """Ephemeral Prefect with a project-local home, unless PREFECT_API_URL or PREFECT_HOME say otherwise."""
    os.environ.setdefault("PREFECT_HOME", str(Path(work_dir, "prefect").resolve()))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    # The temporary API server needs more than the 20 s default on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Progress bars of sub-second steps (cache writes, artifact downloads) only bury the log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # Dask's scheduler and workers log every connection at INFO: only their warnings say something.
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    import datasets

    datasets.disable_progress_bars()


@contextmanager
def api_for_workers() -> Iterator[None]:
    """A Prefect API that worker processes reach too: the configured one, else a temporary server.

    Prefect's own temporary server lives inside the flow's process, where worker processes cannot see
    it: each would start one of its own, and their task runs would be lost with it. The temporary
    server started here is Prefect's own (one per process), so the flow uses it too; it is stopped
    afterwards only if it was started here.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    configured = os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value()
    if configured:
        with _exported("PREFECT_API_URL", configured):  # the settings may hold it, not the environment
            yield
        return
    from prefect.logging.handlers import APILogHandler
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    started_here = not server.running
    server.start(timeout=int(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")))
    try:
        with (
            _exported("PREFECT_API_URL", server.api_url),
            temporary_settings({PREFECT_API_URL: server.api_url}),
        ):
            try:
                yield
            finally:
                APILogHandler().flush()  # the flow's last log records, while the server still listens
    finally:
        if started_here:
            server.stop()


@contextmanager
def _exported(name: str, value: str) -> Iterator[None]:
    """An environment variable set for the block (and the processes it starts), then put back."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved
