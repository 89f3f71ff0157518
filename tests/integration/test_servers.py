"""The production topology on loopback, as `make services-up` starts it: PostgreSQL, an MLflow server
and a Prefect server on it, a Prefect process worker. Pipelines run against it in subprocesses, as
scheduled runs would, and the checks go through the servers' REST APIs.

Faults: the MLflow server stopping mid-run (back after a while, or for good) and two pipeline runs
of one task at once.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.integration
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

    def stop_mlflow(self) -> None:
        pid = int((self.state / "mlflow.pid").read_text())
        os.killpg(pid, signal.SIGKILL)  # a crash, not a clean shutdown
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)

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


@pytest.fixture(scope="module")
def topology() -> Topology:
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")):
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed: .ci/run installs it with apt")
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    # Not under pytest's private temporary folder: the postgres user must reach its data folder.
    state = Path(tempfile.mkdtemp(prefix="seqops-services-"))
    state.chmod(0o755)
    mlflow_port, prefect_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))},
        "SEQOPS_SERVICES_DIR": str(state),
        "SEQOPS_PG_PORT": str(free_port()),
        "SEQOPS_MLFLOW_PORT": str(mlflow_port),
        "SEQOPS_PREFECT_PORT": str(prefect_port),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    topology = Topology(env, f"http://127.0.0.1:{mlflow_port}", f"http://127.0.0.1:{prefect_port}/api", state)
    started = time.perf_counter()
    topology.services("up")
    print(f"topology up in {time.perf_counter() - started:.1f}s")
    try:
        yield topology
    finally:
        topology.services("down")
        shutil.rmtree(state, ignore_errors=True)


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


def test_a_pipeline_run_against_the_servers_registers_and_promotes(topology, shared_data_dir, tmp_path):
    started = time.perf_counter()
    code, log = Pipeline(topology, tmp_path, shared_data_dir, "lstm").wait()
    assert code == 0, log[-3000:]
    print(f"pipeline against the servers in {time.perf_counter() - started:.1f}s")
    version = champion(topology)
    assert version["version"] == "1" and version["tags"] and version["status"] == "READY"
    tags = {t["key"]: t["value"] for t in version["tags"]}
    run = topology.mlflow_get("runs/get", run_id=tags["run_id"])["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {m["key"] for m in run["data"]["metrics"]} >= {"test_macro_f1", "parity_error", "onnx_bytes"}
    assert_servable(topology, version)
    flow_runs = topology.prefect_post(
        "flow_runs/filter", {"flows": {"name": {"any_": ["seqops-pipeline"]}}, "sort": "START_TIME_DESC"}
    )
    assert flow_runs and flow_runs[0]["state"]["type"] == "COMPLETED"
    artifacts = topology.prefect_post(
        "artifacts/filter", {"artifacts": {"key": {"any_": ["seqops-sentiment-promotion"]}}}
    )
    assert artifacts and "no champion yet" in artifacts[0]["data"]
    parent = next(r for r in runs(topology) if "mlflow.parentRunId" not in str(r["data"].get("tags")))
    assert {"key": "promotion", "value": "no champion yet"} in parent["data"]["tags"]
    assert "promotion_candidate" in {m["key"] for m in parent["data"]["metrics"]}


def test_mlflow_down_mid_run_is_retried_until_it_returns(topology, shared_data_dir, tmp_path):
    before, known = len(versions(topology)), run_ids(topology)
    pipeline = Pipeline(topology, tmp_path, shared_data_dir, "gru")
    wait_for_cell_run(topology, known)
    topology.stop_mlflow()
    time.sleep(4)
    topology.services("up")  # restarts only what is down
    code, log = pipeline.wait()
    assert code == 0, log[-3000:]
    assert "MLflow call failed (" in log, log[-3000:]  # the outage was met, and retried
    registered = versions(topology)
    assert len(registered) == before + 1
    for version in registered:
        assert_servable(topology, version)
    assert_servable(topology, champion(topology))


def test_mlflow_down_for_good_fails_clearly_registers_nothing_and_leaks_no_password(
    topology, shared_data_dir, tmp_path
):
    before, holder, known = len(versions(topology)), champion(topology), run_ids(topology)
    secret = "pw-" + os.urandom(6).hex()  # the server ignores credentials; the client must hide them
    with_password = topology.mlflow.replace("http://", f"http://seqops:{secret}@")
    pipeline = Pipeline(topology, tmp_path, shared_data_dir, "rnn", {"MLFLOW_TRACKING_URI": with_password})
    wait_for_cell_run(topology, known)
    topology.stop_mlflow()
    code, log = pipeline.wait()
    topology.services("up")
    assert code == 1
    assert "tracking server unavailable" in log and "MLflow call failed after" in log, log[-3000:]
    assert len(versions(topology)) == before
    assert champion(topology)["version"] == holder["version"]
    assert secret not in log and "http://seqops:" not in log and "Traceback" not in log
    assert "http://***@127.0.0.1" in log
    for database in ("mlflow", "prefect"):  # the MLflow store and Prefect's logs, states and events
        assert secret not in topology.dump(database)
    for path in [*(topology.state / "mlartifacts").rglob("*"), *tmp_path.rglob("*")]:
        assert not path.is_file() or secret.encode() not in path.read_bytes(), path


def test_two_runs_at_once_leave_the_best_model_champion(topology, shared_data_dir, tmp_path):
    runs = [Pipeline(topology, tmp_path / cell, shared_data_dir, cell) for cell in ("rnn", "lstm")]
    for pipeline in runs:
        code, log = pipeline.wait()
        assert code == 0, log[-3000:]
    scores = {
        v["version"]: float({t["key"]: t["value"] for t in v["tags"]}["test_macro_f1"])
        for v in versions(topology)
        if v.get("tags")
    }
    holder = champion(topology)
    assert scores[holder["version"]] == max(scores.values())
    assert_servable(topology, holder)


def test_seqops_schedule_serves_the_same_deployment(topology, tmp_path):
    env = client_env(topology, tmp_path)
    log = (tmp_path / "schedule.log").open("w")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "schedule",
            "-d",
            "retrain-forecasting",
            "--work-dir",
            str(tmp_path),
        ],
        env=env,
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, found = time.time() + 120, {}
        while time.time() < deadline and not found.get("schedules"):
            response = httpx.get(f"{topology.prefect}/deployments/name/seqops-pipeline/retrain-forecasting")
            found = (
                response.json()
                if response.status_code == 200 and not response.json().get("work_pool_name")
                else {}
            )
            time.sleep(1)
        assert found, (tmp_path / "schedule.log").read_text()[-3000:]
        assert found["schedules"][0]["schedule"]["cron"] == "30 2 * * *"
        assert found["parameters"] == {"tasks": ["forecasting"], "profile": "default"}
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def test_deployments_get_scheduled_runs_and_a_worker_runs_batch_inference(topology, tmp_path):
    env = {**client_env(topology, tmp_path), "SEQOPS_PROJECT_DIR": str(ROOT)}
    deploy = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    done = subprocess.run(
        [*deploy, "--prefect-file", "infra/prefect.yaml"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    retrain = httpx.get(f"{topology.prefect}/deployments/name/seqops-pipeline/retrain-sentiment").json()
    assert retrain["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    assert retrain["work_pool_name"] == "seqops-process"
    deadline, scheduled = time.time() + 90, []
    while not scheduled and time.time() < deadline:
        scheduled = topology.prefect_post(
            "flow_runs/filter",
            {
                "deployments": {"id": {"any_": [retrain["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            },
        )
        time.sleep(1)
    assert scheduled, "the scheduler created no run for the cron deployment"

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["a gripping , moving film", "dull and tedious", ""])
        + "\n{not json\n"
    )
    batch = httpx.get(f"{topology.prefect}/deployments/name/seqops-batch-predict/batch-predict").json()
    output = tmp_path / "predictions.jsonl"
    flow_run = topology.prefect_post(
        f"deployments/{batch['id']}/create_flow_run",
        {"parameters": {"input_path": str(rows), "output_path": str(output)}},
    )
    deadline, state = time.time() + 300, None
    while time.time() < deadline:
        state = httpx.get(f"{topology.prefect}/flow_runs/{flow_run['id']}").json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(2)
    assert state and state["type"] == "COMPLETED", state
    predictions = [json.loads(line) for line in output.read_text().splitlines()]
    assert [p["row"] for p in predictions] == [1, 2]
    assert all(p["label"] in ("negative", "positive") for p in predictions)
    errors = output.with_name(output.name + ".errors.jsonl").read_text().splitlines()
    assert len(errors) == 2
