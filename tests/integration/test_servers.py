"""The production topology on loopback, as `make services-up` starts it: PostgreSQL, an MLflow server
and a Prefect server on it, a Prefect process worker. Pipelines run against it in subprocesses, as
scheduled runs would, and the checks go through the servers' REST APIs.

Faults: the MLflow server stopping mid-run (back after a while, or for good) and two pipeline runs
of one task at once.

The servers are started once for the module, and the first pipeline run against the empty registry
(``first_run``) is a module fixture too: every test that needs a champion, or registers versions of
its own, requests it, so each test holds in any order.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from server_topology import (
    ROOT,
    Pipeline,
    Topology,
    assert_servable,
    champion,
    client_env,
    free_port,
    run_ids,
    tags_of,
    versions,
    wait_for_cell_run,
)

pytestmark = pytest.mark.integration


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
    finally:  # thrown away: no graceful shutdown to wait for, only PostgreSQL is stopped cleanly
        for service in ("worker", "prefect", "mlflow"):
            topology.crash(service)
        topology.services("down")
        shutil.rmtree(state, ignore_errors=True)


@dataclass
class FirstRun:
    """The first pipeline run against the empty registry, and what it left: the champion, its flow run."""

    log: str
    champion: dict
    flow_run_id: str


@pytest.fixture(scope="module")
def first_run(topology, shared_data_dir, tmp_path_factory) -> FirstRun:
    assert not versions(topology), "the first run must meet an empty registry"
    started = time.perf_counter()
    code, log = Pipeline(topology, tmp_path_factory.mktemp("first-run"), shared_data_dir, "lstm").wait()
    assert code == 0, log[-3000:]
    print(f"pipeline against the servers in {time.perf_counter() - started:.1f}s")
    name = re.search(r"Beginning flow run '([^']+)' for flow 'seqops-pipeline'", log)
    assert name, log[-3000:]
    (flow_run,) = topology.prefect_post("flow_runs/filter", {"flow_runs": {"name": {"any_": [name[1]]}}})
    return FirstRun(log, champion(topology), flow_run["id"])


def test_a_pipeline_run_against_the_servers_registers_and_promotes(topology, first_run):
    version = first_run.champion
    assert version["version"] == "1" and version["tags"] and version["status"] == "READY"
    run = topology.mlflow_get("runs/get", run_id=tags_of(version)["run_id"])["run"]
    assert run["info"]["status"] == "FINISHED"
    assert {m["key"] for m in run["data"]["metrics"]} >= {
        "test/macro_f1",
        "ship/parity_error",
        "ship/onnx_kb",
    }
    assert_servable(topology, version)
    flow_run = httpx.get(f"{topology.prefect}/flow_runs/{first_run.flow_run_id}", timeout=30).json()
    assert flow_run["state"]["type"] == "COMPLETED"
    subflows = topology.prefect_post(
        "flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [first_run.flow_run_id]}}}
    )
    artifacts = topology.prefect_post(
        "artifacts/filter",
        {
            "artifacts": {
                "key": {"any_": ["seqops-sentiment-promotion"]},
                "flow_run_id": {"any_": [subflow["id"] for subflow in subflows]},
            }
        },
    )
    assert artifacts and "promoted version 1: first champion" in artifacts[0]["data"]
    parent = topology.mlflow_get("runs/get", run_id=tags_of(run)["mlflow.parentRunId"])["run"]
    assert tags_of(parent)["promotion"] == "promoted version 1: first champion"
    assert "promotion/candidate" in {m["key"] for m in parent["data"]["metrics"]}


def test_mlflow_down_mid_run_is_retried_until_it_returns(topology, first_run, shared_data_dir, tmp_path):
    before, known = len(versions(topology)), run_ids(topology)
    pipeline = Pipeline(topology, tmp_path, shared_data_dir, "gru")
    try:
        wait_for_cell_run(topology, known)
        topology.stop_mlflow()
        pipeline.wait_for("MLflow call failed (")  # the outage was met, and is being retried
    finally:
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
    topology, first_run, shared_data_dir, tmp_path
):
    before, holder, known = len(versions(topology)), champion(topology), run_ids(topology)
    secret = "pw-" + os.urandom(6).hex()  # the server ignores credentials; the client must hide them
    with_password = topology.mlflow.replace("http://", f"http://seqops:{secret}@")
    # One retry: that the client gives up after its retries is the point here, not how many there are.
    env = {"MLFLOW_TRACKING_URI": with_password, "SEQOPS_MLFLOW_ATTEMPTS": "2"}
    pipeline = Pipeline(topology, tmp_path, shared_data_dir, "rnn", env)
    try:
        wait_for_cell_run(topology, known)
        topology.stop_mlflow()
        code, log = pipeline.wait()
    finally:
        topology.services("up")  # back for the other tests, whatever happened here
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


def test_two_runs_at_once_leave_the_best_model_champion(topology, first_run, shared_data_dir, tmp_path):
    runs = [Pipeline(topology, tmp_path / cell, shared_data_dir, cell) for cell in ("rnn", "lstm")]
    for pipeline in runs:
        code, log = pipeline.wait()
        assert code == 0, log[-3000:]
    scores = {v["version"]: float(tags_of(v)["test_macro_f1"]) for v in versions(topology) if v.get("tags")}
    holder = champion(topology)
    assert scores[holder["version"]] == max(scores.values())
    assert_servable(topology, holder)


def test_seqops_schedule_serves_the_same_deployment(topology, tmp_path):
    deployment = f"{topology.prefect}/deployments/name/seqops-pipeline/retrain-forecasting"
    left = httpx.get(deployment, timeout=30)
    if left.status_code == 200:  # `prefect deploy` of another test put it on the work pool: start afresh
        httpx.delete(f"{topology.prefect}/deployments/{left.json()['id']}", timeout=30).raise_for_status()
    command = [sys.executable, "-m", "flows.cli", "schedule", "-d", "retrain-forecasting"]
    with (tmp_path / "schedule.log").open("w") as log:
        server = subprocess.Popen(
            [*command, "--work-dir", str(tmp_path)],
            env=client_env(topology, tmp_path),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline, found = time.time() + 120, {}
        while time.time() < deadline and not found.get("schedules"):
            response = httpx.get(deployment, timeout=30)
            found = (
                response.json()
                if response.status_code == 200 and not response.json().get("work_pool_name")
                else {}
            )
            time.sleep(0 if found.get("schedules") else 0.5)
        assert found, (tmp_path / "schedule.log").read_text()[-3000:]
        assert found["schedules"][0]["schedule"]["cron"] == "30 2 * * *"
        assert found["parameters"] == {"tasks": ["forecasting"], "profile": "default"}
    finally:
        # SIGTERM, as a service manager stops it: SIGINT is ignored by processes that inherit it ignored
        # (anything started in the background by a shell without job control, as CI scripts may be).
        stopping = time.perf_counter()
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            tail = (tmp_path / "schedule.log").read_text()[-3000:]
            raise AssertionError(f"seqops schedule did not stop within 30 s of SIGTERM:\n{tail}") from None
        print(f"seqops schedule stopped in {time.perf_counter() - stopping:.1f}s")
    assert server.returncode == 0, (tmp_path / "schedule.log").read_text()[-3000:]
    assert httpx.get(deployment, timeout=30).json()["paused"]  # no runs get scheduled for a server that left


def test_deployments_get_scheduled_runs_and_a_worker_runs_batch_inference(topology, first_run, tmp_path):
    env = {**client_env(topology, tmp_path), "SEQOPS_PROJECT_DIR": str(ROOT)}
    deploy = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"]
    done = subprocess.run(
        [*deploy, "--prefect-file", "infra/prefect.yaml"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    retrain = httpx.get(f"{topology.prefect}/deployments/name/seqops-pipeline/retrain-sentiment").json()
    assert retrain["schedules"][0]["schedule"]["cron"] == "0 2 * * *"
    assert retrain["work_pool_name"] == "seqops-process"

    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "\n".join(json.dumps({"text": t}) for t in ["a gripping , moving film", "dull and tedious", ""])
        + "\n{not json\n"
    )
    batch = httpx.get(f"{topology.prefect}/deployments/name/seqops-batch-predict/batch-predict").json()
    output = tmp_path / "predictions.jsonl"
    flow_run = topology.prefect_post(  # the worker runs it while the scheduler creates the cron runs
        f"deployments/{batch['id']}/create_flow_run",
        {"parameters": {"input_path": str(rows), "output_path": str(output)}},
    )
    deadline, scheduled = time.time() + 90, []
    while not scheduled and time.time() < deadline:
        scheduled = topology.prefect_post(
            "flow_runs/filter",
            {
                "deployments": {"id": {"any_": [retrain["id"]]}},
                "flow_runs": {"state": {"type": {"any_": ["SCHEDULED"]}}},
            },
        )
        time.sleep(0 if scheduled else 0.5)
    assert scheduled, "the scheduler created no run for the cron deployment"
    deadline, state = time.time() + 300, None
    while time.time() < deadline:
        state = httpx.get(f"{topology.prefect}/flow_runs/{flow_run['id']}").json()["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            break
        time.sleep(0.5)
    assert state and state["type"] == "COMPLETED", state
    predictions = [json.loads(line) for line in output.read_text().splitlines()]
    assert [p["row"] for p in predictions] == [1, 2]
    assert all(p["label"] in ("negative", "positive") for p in predictions)
    errors = output.with_name(output.name + ".errors.jsonl").read_text().splitlines()
    assert len(errors) == 2
