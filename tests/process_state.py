"""Process-wide state a test may change, captured before it and put back after it.

Tests run in one process, so whatever one leaves behind (an environment variable, MLflow's
tracking URI, registry URI or active experiment, an MLflow run left open, Prefect's settings
context, the working folder, the temporary folder, torch's thread count) would reach every later
test, and passing would depend on the order. Capturing and restoring only read module attributes
and compare dictionaries, so they cost microseconds; libraries not imported yet are not imported.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

MLFLOW_GLOBALS = (  # module, attribute: where MLflow keeps its process-wide choices
    ("mlflow.tracking._tracking_service.utils", "_tracking_uri"),
    ("mlflow.tracking._model_registry.utils", "_registry_uri"),
    ("mlflow.tracking.fluent", "_active_experiment_id"),
)
QUICK_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
MISSING = object()  # the module was not imported yet


class LeftBehind(Warning):
    """A test left an MLflow run active (shown in pytest's warnings summary; the run is ended)."""


def _module_value(module: str, attribute: str) -> Any:
    loaded = sys.modules.get(module)
    return MISSING if loaded is None else getattr(loaded, attribute, None)


def _prefect_contexts() -> tuple[Any, Any]:
    """Prefect's global settings context and the settings context variable, or MISSING twice."""
    context = sys.modules.get("prefect.context")
    if context is None or not hasattr(context, "GLOBAL_SETTINGS_CONTEXT"):
        return MISSING, MISSING
    return context.GLOBAL_SETTINGS_CONTEXT, context.SettingsContext.__var__.get(None)


@contextlib.contextmanager
def _quick_http() -> Iterator[None]:
    """MLflow HTTP calls without retries and with a short timeout, for the length of the block."""
    saved = {name: os.environ.get(name) for name in QUICK_HTTP}
    os.environ.update(QUICK_HTTP)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def end_open_mlflow_runs() -> list[str]:
    """End (as KILLED) every MLflow run a test left active in this thread; returns their ids."""
    fluent = sys.modules.get("mlflow.tracking.fluent")
    if fluent is None:
        return []
    ended = []
    for _ in range(len(fluent._active_run_stack.get())):
        run = fluent.active_run()
        if run is None:
            break
        ended.append(run.info.run_id)
        # The run leaves the stack first; a server that has gone away must neither fail nor stall this.
        with _quick_http(), contextlib.suppress(Exception):
            fluent.end_run("KILLED")
    fluent._active_run_stack.set([])
    return ended


@dataclass
class ProcessState:
    """A snapshot of the state listed in the module docstring."""

    environ: dict[str, str]
    cwd: str
    tempdir: str | None
    mlflow: tuple[Any, ...]
    prefect: tuple[Any, Any]
    torch_threads: int | None

    @classmethod
    def capture(cls) -> ProcessState:
        torch = sys.modules.get("torch")
        return cls(
            environ=dict(os.environ),
            cwd=os.getcwd(),
            tempdir=tempfile.tempdir,
            mlflow=tuple(_module_value(module, name) for module, name in MLFLOW_GLOBALS),
            prefect=_prefect_contexts(),
            torch_threads=torch.get_num_threads() if torch is not None else None,
        )

    def restore(self, prefect: bool = True) -> None:
        """Put the captured state back; ``prefect=False`` leaves Prefect's settings contexts as they are."""
        ended = end_open_mlflow_runs()  # before the URI changes back: a run ends where it started
        if ended:
            warnings.warn(f"MLflow runs left active, ended as KILLED: {ended}", LeftBehind, stacklevel=2)
        self._restore_mlflow()
        environ_changed = self._restore_environ()
        if prefect:
            self._restore_prefect(environ_changed)
        if os.getcwd() != self.cwd:
            os.chdir(self.cwd)
        tempfile.tempdir = self.tempdir  # gettempdir() caches what TMPDIR said when first asked
        torch = sys.modules.get("torch")
        threads = self.torch_threads
        if torch is not None and threads is not None and torch.get_num_threads() != threads:
            torch.set_num_threads(threads)

    def _restore_mlflow(self) -> None:
        for (module, attribute), before in zip(MLFLOW_GLOBALS, self.mlflow, strict=True):
            loaded = sys.modules.get(module)
            if loaded is not None:  # the environment variable MLflow also sets is restored with the rest
                setattr(loaded, attribute, None if before is MISSING else before)

    def _restore_environ(self) -> bool:
        now = os.environ
        if now == self.environ:
            return False
        for name in [name for name in now if name not in self.environ]:
            del now[name]
        for name, value in self.environ.items():
            if now.get(name) != value:
                now[name] = value
        return True

    def _restore_prefect(self, environ_changed: bool) -> None:
        context = sys.modules.get("prefect.context")
        if context is None or not hasattr(context, "GLOBAL_SETTINGS_CONTEXT"):
            return
        global_before, variable_before = self.prefect
        if global_before is MISSING:  # Prefect was first imported during the test, maybe under its settings
            if environ_changed:
                context.refresh_global_settings_context()
        elif context.GLOBAL_SETTINGS_CONTEXT is not global_before:
            context.GLOBAL_SETTINGS_CONTEXT = global_before
        variable = context.SettingsContext.__var__
        if variable.get(None) is not (None if variable_before is MISSING else variable_before):
            variable.set(None if variable_before is MISSING else variable_before)
