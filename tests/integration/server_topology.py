"""The servers' topology on loopback (``infra/services.sh``) and pipeline runs against it, for
``test_servers``: starting and stopping services, reading the MLflow and Prefect REST APIs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "infra" / "services.sh"
MODEL = "seqops-sentiment"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Topology:
    env: dict[str, str]
    mlflow: str
    prefect: str
    state: Path

    def services(self, command: str) -> None:
        subprocess.run(["bash", str(SERVICES), command], env=self.env, check=True, timeout=300)

    def crash(self, service: str) -> None:
        """SIGKILL a service's process group (a crash, not a clean shutdown); returns once it is gone."""
        pid_file = self.state / f"{service}.pid"
        if not pid_file.is_file():
            return
        pid = int(pid_file.read_text())
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

    def stop_mlflow(self) -> None:
        self.crash("mlflow")

    def dump(self, database: str) -> str:
        """A plain-text dump of one of the topology's databases (``mlflow`` or ``prefect``)."""
        pg_bin = sorted(Path("/usr/lib/postgresql").glob("*/bin"))[-1]
        env = {**self.env, "PGPASSWORD": (self.state / "db-password").read_text()}
        command = [str(pg_bin / "pg_dump"), "-h", "127.0.0.1", "-p", self.env["SEQOPS_PG_PORT"]]
        command += ["-U", "seqops", "--data-only", database]
        return subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, timeout=120
        ).stdout

    def mlflow_get(self, path: str, **params: str) -> dict:
        response = httpx.get(f"{self.mlflow}/api/2.0/mlflow/{path}", params=params, timeout=30)
        response.raise_for_status()
        return response.json()

    def prefect_post(self, path: str, body: dict) -> list | dict:
        response = httpx.post(f"{self.prefect}/{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()


def client_env(topology: Topology, work_dir: Path) -> dict[str, str]:
    """What a scheduled run sees: the servers' URIs, short HTTP retries so outages show in seconds."""
    return {
        **topology.env,
        "MLFLOW_TRACKING_URI": topology.mlflow,
        "PREFECT_API_URL": topology.prefect,
        "PREFECT_HOME": str(work_dir / "prefect"),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "SEQOPS_MLFLOW_BACKOFF": "1",
        "HF_HUB_OFFLINE": "1",
    }


def pipeline_command(work_dir: Path, data_dir: Path, cell: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "flows.cli", "pipeline", "--task", "sentiment", "--cell", cell, "--profile", "smoke"),
        *("--data-dir", str(data_dir), "--work-dir", str(work_dir)),
    ]


class Pipeline:
    """A pipeline subprocess whose output is collected as it comes."""

    def __init__(
        self, topology: Topology, work_dir: Path, data_dir: Path, cell: str, env: dict[str, str] | None = None
    ):
        self.process = subprocess.Popen(
            pipeline_command(work_dir, data_dir, cell),
            env={**client_env(topology, work_dir), **(env or {})},
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()

    def wait(self, timeout: float = 600) -> tuple[int, str]:
        code = self.process.wait(timeout)
        self.reader.join(10)
        return code, "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 180) -> None:
        """Return once ``text`` is in the run's output (the run has reached that point)."""
        deadline = time.monotonic() + timeout
        while not any(text in line for line in list(self.lines)):
            tail = "".join(self.lines)[-3000:]
            assert self.process.poll() is None, f"the run ended before {text!r}: {tail}"
            assert time.monotonic() < deadline, f"no {text!r} in time: {tail}"
            time.sleep(0.1)


def versions(topology: Topology) -> list[dict]:
    found = topology.mlflow_get("model-versions/search", filter=f"name='{MODEL}'")
    return found.get("model_versions", [])


def champion(topology: Topology) -> dict:
    return topology.mlflow_get("registered-models/alias", name=MODEL, alias="champion")["model_version"]


def assert_servable(topology: Topology, version: dict) -> None:
    """The version's bundle is in the artifact store: ``bundle.json`` and the ONNX graph."""
    import mlflow

    uri = topology.mlflow_get("model-versions/get-download-uri", name=MODEL, version=version["version"])
    listed = mlflow.artifacts.list_artifacts(
        artifact_uri=f"{uri['artifact_uri']}/artifacts/bundle", tracking_uri=topology.mlflow
    )
    names = {artifact.path.rsplit("/", 1)[-1] for artifact in listed}
    assert {"bundle.json", "model.onnx"} <= names, names


def wait_for_cell_run(topology: Topology, known: set[str], timeout: float = 180) -> None:
    """Return once a new cell run (a nested MLflow run) has started: the pipeline is mid-way."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            experiment = topology.mlflow_get("experiments/get-by-name", experiment_name="seqops-sentiment")
            response = httpx.post(
                f"{topology.mlflow}/api/2.0/mlflow/runs/search",
                json={"experiment_ids": [experiment["experiment"]["experiment_id"]], "max_results": 100},
                timeout=10,
            )
            runs = response.json().get("runs", [])
            if any(
                r["info"]["run_id"] not in known
                and any(t["key"] == "mlflow.parentRunId" for t in r["data"].get("tags", []))
                for r in runs
            ):
                return
        except (httpx.HTTPError, KeyError):
            pass
        time.sleep(0.2)
    raise AssertionError("the pipeline never started a cell run")


def runs(topology: Topology) -> list[dict]:
    try:
        experiment = topology.mlflow_get("experiments/get-by-name", experiment_name="seqops-sentiment")
    except httpx.HTTPStatusError:
        return []
    response = httpx.post(
        f"{topology.mlflow}/api/2.0/mlflow/runs/search",
        json={"experiment_ids": [experiment["experiment"]["experiment_id"]], "max_results": 1000},
        timeout=10,
    )
    return response.json().get("runs", [])


def run_ids(topology: Topology) -> set[str]:
    return {r["info"]["run_id"] for r in runs(topology)}


def tags_of(entity: dict) -> dict[str, str]:
    return {t["key"]: t["value"] for t in entity.get("tags") or entity.get("data", {}).get("tags", [])}
