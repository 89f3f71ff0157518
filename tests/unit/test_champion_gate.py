"""The champion gate on a real MLflow registry (SQLite) and a real Prefect API (its promotion lock).

Runs at the gate are raced by events: one run is held at a chosen point while the other arrives. How each
of the two locks, alone, keeps runs apart is in ``test_gate_locks.py``; decisions for both metric
directions and re-scoring in ``test_gate_decisions.py``.
"""

import threading
from contextlib import suppress

import mlflow
import pytest
from gate_registry import registry_with_a_bundle
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

import flows.champion
from flows.champion import CHAMPION, PromotionLock, promote_best
from flows.tracking import register_version
from serving.pyfunc import CODE_PATHS, MODEL_CODE, PIP_REQUIREMENTS
from tasks import get_task

MODEL = "seqops-sentiment"
TASK = get_task("sentiment")
WATCH = 1.0  # seconds a waiting run is watched, to see it kept out while another is at the gate


@pytest.fixture(scope="module")
def registry(tmp_path_factory, prefect_harness):
    """A fresh registry holding a model logged with its bundle and one logged without it."""
    with registry_with_a_bundle(tmp_path_factory.mktemp("registry"), "champion-gate") as with_bundle:
        with mlflow.start_run():
            without_bundle = mlflow.pyfunc.log_model(
                name="broken",
                python_model=str(MODEL_CODE),
                pip_requirements=PIP_REQUIREMENTS,
                code_paths=CODE_PATHS,
            ).model_uri
        yield with_bundle, without_bundle


@pytest.fixture(autouse=True)
def no_champion_yet(registry):
    """Every test starts from a registry without the model, whatever ran before it."""
    with suppress(MlflowException):
        MlflowClient().delete_registered_model(MODEL)


def candidate(model_uri: str, score: float) -> dict:
    """A registered version scored ``score`` on the test split, as the pipeline's cell row."""
    version = register_version(model_uri, MODEL, {"test_macro_f1": score, "data_fingerprint": "same"})
    return {"cell": "lstm", "version": version, "test_macro_f1": score}


def gate(row: dict) -> dict:
    return promote_best.fn(TASK, [row], ["model"], "same")


def champion_version() -> str | None:
    aliases = MlflowClient().get_registered_model(MODEL).aliases
    return aliases.get(CHAMPION)


def test_a_worse_model_never_takes_the_alias_and_a_better_one_does(registry):
    with_bundle, _ = registry
    first = gate(candidate(with_bundle, 0.70))
    assert first["promoted"] and first["reason"] == "no champion yet"
    holder = champion_version()

    worse = gate(candidate(with_bundle, 0.65))
    assert not worse["promoted"] and champion_version() == holder
    assert worse["reason"] == "macro_f1 0.6500 does not beat 0.7000"
    assert (worse["candidate"], worse["champion"]) == (0.65, 0.70)

    better = candidate(with_bundle, 0.75)
    decision = gate(better)
    assert decision["promoted"] and champion_version() == better["version"]
    assert decision["reason"] == "macro_f1 0.7500 beats 0.7000"


def test_a_version_without_its_onnx_bundle_is_never_promoted(registry):
    with_bundle, without_bundle = registry
    holder = gate(candidate(with_bundle, 0.70))["candidate_version"]
    decision = gate(candidate(without_bundle, 0.99))
    assert not decision["promoted"] and "lacks its ONNX bundle" in decision["reason"]
    assert champion_version() == holder


def test_a_run_arriving_while_another_is_at_the_gate_waits_its_turn(registry, monkeypatch):
    with_bundle, _ = registry
    best = candidate(with_bundle, 0.95)
    real_decide, deciding = flows.champion.decide, threading.Event()

    def watched(*args) -> dict:
        deciding.set()
        return real_decide(*args)

    monkeypatch.setattr(flows.champion, "decide", watched)
    decisions = []
    waiting = threading.Thread(target=lambda: decisions.append(gate(best)))
    with PromotionLock(MODEL):  # another pipeline run is at the gate
        waiting.start()
        assert not deciding.wait(WATCH), "a run decided while another held the gate"
    waiting.join(60)
    assert decisions[0]["promoted"] and champion_version() == best["version"]


def test_two_runs_at_the_gate_at_once_leave_the_better_champion(registry, monkeypatch):
    """The lost update: the worse run reads the champion before the better run promotes, and moves last."""
    with_bundle, _ = registry
    real_read = flows.champion.current_champion
    better_read, better_may_go, better_done, worse_read = (threading.Event() for _ in range(4))

    def read(name: str):
        seen = real_read(name)
        if threading.current_thread().name == "better":
            better_read.set()
            better_may_go.wait(60)  # hold the better run between reading the champion and moving the alias
        else:
            worse_read.set()
            better_done.wait(60)  # without turns, the worse run (which saw the old champion) moves last
        return seen

    monkeypatch.setattr(flows.champion, "current_champion", read)
    better, worse = candidate(with_bundle, 0.97), candidate(with_bundle, 0.96)
    decisions = {}

    def run_better() -> None:
        decisions["better"] = gate(better)
        better_done.set()

    runs = [
        threading.Thread(target=run_better, name="better"),
        threading.Thread(target=lambda: decisions.update(worse=gate(worse)), name="worse"),
    ]
    runs[0].start()
    assert better_read.wait(60)
    runs[1].start()
    try:
        assert not worse_read.wait(WATCH), "a run read the champion while another held the gate"
    finally:
        better_may_go.set()
        for run in runs:
            run.join(60)
    assert decisions["better"]["promoted"] and not decisions["worse"]["promoted"]
    assert decisions["worse"]["reason"] == "macro_f1 0.9600 does not beat 0.9700"
    assert champion_version() == better["version"]


def test_the_champion_tag_moves_with_the_alias_onto_its_run_and_each_title_is_dated(registry):
    with_bundle, _ = registry
    client, runs = MlflowClient(), []
    for _ in range(2):
        with mlflow.start_run() as run:
            runs.append(run.info.run_id)
    client.create_registered_model(MODEL)
    first, second = (client.create_model_version(MODEL, with_bundle, run_id=run).version for run in runs)
    flows.champion.promote(MODEL, first)
    assert client.get_run(runs[0]).data.tags["champion"] == f"version {first}"
    flows.champion.promote(MODEL, second, client.get_model_version(MODEL, first))
    assert champion_version() == second
    assert client.get_run(runs[0]).data.tags["champion"] == f"was version {first}"
    assert client.get_run(runs[1]).data.tags["champion"] == f"version {second}"
    old, new = client.get_model_version(MODEL, first), client.get_model_version(MODEL, second)
    assert {"champion_since", "champion_until"} <= set(old.tags) and "champion_until" not in new.tags
