"""The champion gate on a real MLflow registry (SQLite) and a real Prefect API (its promotion lock)."""

import threading
import time

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from flows.champion import CHAMPION, promote_best, promotion_lock
from flows.tracking import log_bundle_model, register_version
from serving.pyfunc import CODE_PATHS, MODEL_CODE, PIP_REQUIREMENTS
from tasks import get_task

MODEL = "seqops-sentiment"
TASK = get_task("sentiment")


@pytest.fixture(scope="module")
def registry(tmp_path_factory, sentiment_bundle, prefect_harness):
    """A fresh registry holding one logged bundle model and one model logged without its bundle."""
    uri = f"sqlite:///{tmp_path_factory.mktemp('registry') / 'mlflow.db'}"
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("champion-gate")
    with mlflow.start_run():
        with_bundle = log_bundle_model(sentiment_bundle).model_uri
        without_bundle = mlflow.pyfunc.log_model(
            name="broken",
            python_model=str(MODEL_CODE),
            pip_requirements=PIP_REQUIREMENTS,
            code_paths=CODE_PATHS,
        ).model_uri
    yield with_bundle, without_bundle
    mlflow.set_tracking_uri(previous)


def candidate(model_uri: str, score: float) -> dict:
    """A registered version scored ``score`` on the test split, as the pipeline's cell row."""
    version = register_version(model_uri, MODEL, {"test_macro_f1": score, "data_fingerprint": "same"})
    return {"cell": "lstm", "version": version, "test_macro_f1": score}


def gate(row: dict) -> dict:
    return promote_best.fn(TASK, [row], ["model"], "same")


def champion_version() -> str:
    return MlflowClient().get_model_version_by_alias(MODEL, CHAMPION).version


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
    _, without_bundle = registry
    holder = champion_version()
    decision = gate(candidate(without_bundle, 0.99))
    assert not decision["promoted"] and "lacks its ONNX bundle" in decision["reason"]
    assert champion_version() == holder


def test_runs_at_the_gate_take_turns(registry):
    with_bundle, _ = registry
    best = candidate(with_bundle, 0.95)
    decisions = []
    with promotion_lock(MODEL):  # another pipeline run is at the gate
        waiting = threading.Thread(target=lambda: decisions.append(gate(best)))
        waiting.start()
        time.sleep(2)
        assert not decisions and champion_version() != best["version"]
    waiting.join(60)
    assert decisions[0]["promoted"] and champion_version() == best["version"]


def test_two_runs_at_the_gate_at_once_leave_the_better_champion(registry, monkeypatch):
    import flows.champion

    with_bundle, _ = registry
    real, delays = flows.champion.current_champion, [0.5, 1.5]

    def slow_read(name):
        # Widen the window between reading the champion and moving the alias: without the lock, the
        # worse run (which read the old champion) would move the alias last.
        seen = real(name)
        time.sleep(delays.pop(0))
        return seen

    monkeypatch.setattr(flows.champion, "current_champion", slow_read)
    better, worse = candidate(with_bundle, 0.97), candidate(with_bundle, 0.96)
    decisions = {}
    first = threading.Thread(target=lambda: decisions.update(better=gate(better)))
    second = threading.Thread(target=lambda: decisions.update(worse=gate(worse)))
    first.start()
    time.sleep(0.2)
    second.start()
    first.join(60)
    second.join(60)
    assert decisions["better"]["promoted"] and not decisions["worse"]["promoted"]
    assert decisions["worse"]["reason"] == "macro_f1 0.9600 does not beat 0.9700"
    assert champion_version() == better["version"]
