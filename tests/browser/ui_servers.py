"""Real MLflow and Prefect servers on loopback, holding one real smoke pipeline run.

Shared by the browser tests' fixtures and by ``screenshots.py``. Every process gets a private folder;
readiness is polled, never slept for.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TASK = "sentiment"
CELLS = ("gru", "lstm")  # two cells: a champion and a runner-up, each trained in seconds on the smoke profile
SERVER_START_SECONDS = 120.0
PIPELINE_SECONDS = 600.0


@dataclass(frozen=True)
class UiStack:
    """Addresses and stores of the running servers and what the smoke pipeline left in them.

    Attributes:
        mlflow_url: The MLflow UI and API, ``http://127.0.0.1:<port>``.
        prefect_url: The Prefect UI, ``http://127.0.0.1:<port>`` (its API under ``/api``).
        tracking_uri: The SQLite store the pipeline wrote and the MLflow server reads.
        work_dir: The pipeline's work folder (caches, bundles, artifacts).
        task: The task the pipeline trained.
    """

    mlflow_url: str
    prefect_url: str
    tracking_uri: str
    work_dir: Path
    task: str = TASK

    @property
    def model_name(self) -> str:
        """The registered model the pipeline made."""
        return f"seqops-{self.task}"


def free_port() -> int:
    """A TCP port on loopback nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(
    ready: Callable[[], bool], what: str, process: subprocess.Popen, log: Path, timeout: float
) -> None:
    """Poll ``ready`` until it holds; fail at once, with the log's tail, if ``process`` exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)  # a polling interval, not a wait for anything in particular


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def servers(*specs: tuple[list[str], dict[str, str], Path, str]) -> Iterator[None]:
    """Start every ``(command, env, log, health_url)`` at once; the block runs once all of them answer."""
    started: list[tuple[subprocess.Popen, Path, str]] = []
    try:
        for command, env, log, health in specs:
            with log.open("w") as out:
                process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
            started.append((process, log, health))
        for process, log, health in started:
            wait_until(lambda url=health: answers(url), log.stem, process, log, SERVER_START_SECONDS)
        yield
    finally:
        for process, _, _ in started:
            process.terminate()
        for process, _, _ in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def prefect_env(root: Path, prefect_url: str) -> dict[str, str]:
    """The environment of the Prefect server and of every client that records into it."""
    return {
        **os.environ,
        "PREFECT_HOME": str(root / "prefect-home"),
        "PREFECT_API_URL": f"{prefect_url}/api",
        "PREFECT_UI_API_URL": f"{prefect_url}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOCAL_STORAGE_PATH": str(root / "prefect-results"),
    }


def run_pipeline(root: Path, data_dir: Path, tracking_uri: str, prefect_url: str) -> Path:
    """The real smoke pipeline (CLI, own process), tracked in ``tracking_uri`` and recorded by Prefect."""
    work_dir = root / "work"
    env = {**prefect_env(root, prefect_url), "MLFLOW_TRACKING_URI": tracking_uri, "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "flows.cli", "pipeline", "--task", TASK, "--profile", "smoke"]
    command += [arg for cell in CELLS for arg in ("--cell", cell)]
    command += ["--data-dir", str(data_dir), "--work-dir", str(work_dir)]
    done = subprocess.run(
        command, cwd=root, env=env, capture_output=True, text=True, timeout=PIPELINE_SECONDS, check=False
    )
    if done.returncode != 0:
        output = f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        raise RuntimeError(f"smoke pipeline failed ({done.returncode}):\n{output}")
    return work_dir


@contextmanager
def ui_stack(root: Path, data_dir: Path) -> Iterator[UiStack]:
    """Start both servers in ``root``, run the smoke pipeline into them, and yield their addresses."""
    root.mkdir(parents=True, exist_ok=True)
    mlflow_url, prefect_url = (f"http://127.0.0.1:{free_port()}" for _ in range(2))
    tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
    bin_dir = Path(sys.executable).parent
    mlflow = [str(bin_dir / "mlflow"), "server", "--backend-store-uri", tracking_uri, "--workers", "1"]
    mlflow += ["--host", "127.0.0.1", "--port", mlflow_url.rsplit(":", 1)[1]]
    prefect = [str(bin_dir / "prefect"), "server", "start", "--host", "127.0.0.1"]
    prefect += ["--port", prefect_url.rsplit(":", 1)[1]]
    with servers(
        (
            mlflow,
            {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
            root / "mlflow.log",
            mlflow_url + "/health",
        ),
        (prefect, prefect_env(root, prefect_url), root / "prefect.log", prefect_url + "/api/health"),
    ):  # the MLflow server has made the store's schema before the pipeline writes to it
        work_dir = run_pipeline(root, data_dir, tracking_uri, prefect_url)
        yield UiStack(mlflow_url, prefect_url, tracking_uri, work_dir)


def prefect_api(stack: UiStack, path: str, body: dict) -> list[dict]:
    """POST ``body`` to the Prefect server's REST API (filters) and return the decoded answer."""
    request = urllib.request.Request(
        f"{stack.prefect_url}/api/{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())
