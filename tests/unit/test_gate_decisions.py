"""The champion gate's decision on a real MLflow registry (SQLite), for a metric to raise and one to lower.

Sentiment is promoted on macro F1 (higher is better), forecasting on MASE (lower is better). The scores
below are written out per task, not derived from the direction, so a gate that reads the direction the
wrong way round fails here.
"""

from contextlib import suppress

import pytest
from gate_registry import registry_with_a_bundle
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ErrorCode
from mlflow.tracking import MlflowClient

from flows.champion import CHAMPION, current_champion, promote_best
from flows.retries import TrackingUnavailable
from flows.tracking import register_version
from tasks import get_task

# task: (metric, champion's score, a worse score, a better one)
SCORES = {"sentiment": ("macro_f1", 0.70, 0.65, 0.75), "forecasting": ("mase", 0.80, 0.90, 0.70)}
BOTH = pytest.mark.parametrize("name", sorted(SCORES))


@pytest.fixture(scope="module")
def servable(tmp_path_factory, prefect_harness):
    """A model URI whose artifacts hold a bundle (``bundle.json`` and ``model.onnx``), in a fresh registry."""
    with registry_with_a_bundle(tmp_path_factory.mktemp("gate-decisions"), "gate-decisions") as model_uri:
        yield model_uri


@pytest.fixture(autouse=True)
def no_champion_yet(servable):
    """Every test starts from a registry without the tasks' models, whatever ran before it."""
    for name in SCORES:
        with suppress(MlflowException):
            MlflowClient().delete_registered_model(f"seqops-{name}")


def candidate(model_uri: str, name: str, score: float, data: str = "same") -> dict:
    """A registered version scored ``score`` on the test split of ``data``, as the pipeline's cell row."""
    metric = SCORES[name][0]
    tags = {f"test_{metric}": score, "data_fingerprint": data}
    version = register_version(model_uri, f"seqops-{name}", tags)
    return {"cell": "gru", "version": version, f"test_{metric}": score}


def crown(model_uri: str, name: str, score: float, data: str = "same") -> str:
    """Register a version scored ``score`` and give it the alias, as an earlier run would have."""
    version = candidate(model_uri, name, score, data)["version"]
    MlflowClient().set_registered_model_alias(f"seqops-{name}", CHAMPION, version)
    return version


def champion_version(name: str) -> str:
    return MlflowClient().get_model_version_by_alias(f"seqops-{name}", CHAMPION).version


def gate(name: str, rows: list[dict], data: str = "same", rescore=None) -> dict:
    return promote_best.fn(get_task(name), rows, ["model"], data, rescore)


@BOTH
@pytest.mark.parametrize("outcome", ["worse", "tied"])
def test_a_worse_or_tied_candidate_never_takes_the_alias(servable, name, outcome):
    metric, held, worse, _ = SCORES[name]
    score = worse if outcome == "worse" else held  # a tie keeps the current champion
    holder = crown(servable, name, held)
    decision = gate(name, [candidate(servable, name, score)])
    assert not decision["promoted"] and champion_version(name) == holder
    assert decision["reason"] == f"{metric} {score:.4f} does not beat {held:.4f}"


@BOTH
def test_a_better_candidate_takes_the_alias(servable, name):
    metric, held, _, better = SCORES[name]
    holder = crown(servable, name, held)
    row = candidate(servable, name, better)
    decision = gate(name, [row])
    assert decision["promoted"] and champion_version(name) == row["version"]
    assert decision == {
        "metric": metric,
        "candidate_version": row["version"],
        "candidate": better,
        "champion_version": holder,
        "champion": held,
        "promoted": True,
        "reason": f"{metric} {better:.4f} beats {held:.4f}",
    }


def test_a_champion_without_a_recorded_score_gives_way_to_a_scored_candidate(servable):
    # A version given the alias by hand (or by a seqops that did not tag scores) has nothing to defend.
    unscored = register_version(servable, "seqops-sentiment", {"data_fingerprint": "same"})
    MlflowClient().set_registered_model_alias("seqops-sentiment", CHAMPION, unscored)
    row = candidate(servable, "sentiment", 0.60)
    decision = gate("sentiment", [row])
    assert decision["promoted"] and champion_version("sentiment") == row["version"]
    assert (decision["champion_version"], decision["champion"]) == (unscored, None)


@BOTH
def test_the_best_of_a_runs_cells_is_the_one_gated(servable, name):
    metric, held, worse, better = SCORES[name]
    crown(servable, name, held)
    rows = [candidate(servable, name, score) for score in (worse, better, held)]
    rows.append({"cell": "rnn", f"test_{metric}": better})  # a cell that was not registered never competes
    decision = gate(name, rows)
    assert decision["candidate_version"] == rows[1]["version"] == champion_version(name)


@BOTH
def test_a_champion_scored_on_this_data_is_not_rescored(servable, name):
    _, held, worse, _ = SCORES[name]
    holder = crown(servable, name, held)
    rescored = []
    decision = gate(name, [candidate(servable, name, worse)], rescore=rescored.append)
    assert rescored == [] and decision["champion"] == held and champion_version(name) == holder


# A champion scored on other data is re-scored on this run's test split before the comparison.
OUTAGES = [
    TrackingUnavailable("MLflow did not answer after 5 attempts"),
    MlflowException("503 Service Unavailable"),
    ConnectionError("connection refused"),
    TimeoutError("read timed out"),
]


@pytest.mark.parametrize("outage", OUTAGES, ids=lambda error: type(error).__name__)
def test_an_outage_while_rescoring_the_champion_stops_the_gate_and_keeps_the_champion(servable, outage):
    holder = crown(servable, "sentiment", 0.90, data="old")
    asked = []

    def rescore(version: str) -> float:
        asked.append(version)
        raise outage

    with pytest.raises(type(outage)) as raised:
        gate("sentiment", [candidate(servable, "sentiment", 0.60, data="new")], data="new", rescore=rescore)
    assert raised.value is outage and asked == [holder]
    assert champion_version("sentiment") == holder


def test_a_champion_that_cannot_be_scored_on_this_data_loses_the_alias(servable):
    crown(servable, "sentiment", 0.90, data="old")

    def rescore(version: str) -> float:
        raise ValueError("the champion's vocabulary does not cover this data")

    row = candidate(servable, "sentiment", 0.60, data="new")
    decision = gate("sentiment", [row], data="new", rescore=rescore)
    assert decision["promoted"] and champion_version("sentiment") == row["version"]
    assert decision["champion"] is None
    assert decision["reason"] == (
        "macro_f1 0.6000 promoted (champion could not be scored on this data: "
        "the champion's vocabulary does not cover this data)"
    )


# task: (stale score the champion was tagged with, its score on this data, whether the candidate wins)
RESCORED = {
    ("sentiment", "worse on this data"): (0.90, 0.60, True),
    ("sentiment", "better on this data"): (0.50, 0.80, False),
    ("forecasting", "worse on this data"): (0.50, 1.10, True),
    ("forecasting", "better on this data"): (1.20, 0.60, False),
}


@pytest.mark.parametrize(("name", "case"), sorted(RESCORED), ids=[" ".join(key) for key in sorted(RESCORED)])
def test_a_champion_rescored_on_this_data_is_compared_on_that_score(servable, name, case):
    stale, fresh, wins = RESCORED[name, case]
    metric, score = SCORES[name][0], SCORES[name][1]
    holder = crown(servable, name, stale, data="old")
    row = candidate(servable, name, score, data="new")
    decision = gate(name, [row], data="new", rescore={holder: fresh}.__getitem__)
    assert decision["champion"] == fresh and decision["promoted"] is wins
    assert champion_version(name) == (row["version"] if wins else holder)
    verdict = "beats" if wins else "does not beat"
    assert decision["reason"] == (
        f"{metric} {score:.4f} {verdict} {fresh:.4f} (champion re-scored on this data)"
    )


def test_a_model_never_registered_or_without_the_alias_has_no_champion(servable):
    assert current_champion("seqops-sentiment") is None  # no such model
    MlflowClient().create_registered_model("seqops-sentiment")
    assert current_champion("seqops-sentiment") is None  # registered, but no alias yet


@pytest.mark.parametrize("code", ["PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_PARAMETER_VALUE"])
def test_a_registry_refusing_to_say_who_the_champion_is_stops_the_gate(servable, code, monkeypatch):
    # Only "no such model" means "no champion": any other answer is no licence to promote.
    holder = crown(servable, "sentiment", 0.90)
    better = candidate(servable, "sentiment", 0.95)

    def refuse(client, name):
        raise MlflowException(f"{code} for {name}", error_code=ErrorCode.Value(code))

    monkeypatch.setattr(MlflowClient, "get_registered_model", refuse)
    monkeypatch.setenv("SEQOPS_MLFLOW_BACKOFF", "0")  # were it retried, the test fails at once
    with pytest.raises(MlflowException, match=code):
        gate("sentiment", [better])
    monkeypatch.undo()
    assert champion_version("sentiment") == holder
