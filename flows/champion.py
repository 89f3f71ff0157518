"""The champion gate: a new version takes the ``champion`` alias only if it is better.

Scores are compared on the same test data: when the champion was scored on other data (another
data fingerprint, e.g. a smoke run or a new data set), it is re-scored on this run's test split first.
Two pipeline runs of one task (a scheduled one and a manual one) take turns at the gate: each holds
the model's Prefect global concurrency limit (one slot) from reading the champion to moving the alias,
so neither can overwrite a better champion the other has just promoted.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from pathlib import Path
from typing import IO, Any

import mlflow
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from prefect import get_client, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
from prefect.concurrency.sync import concurrency
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

from flows.retries import TrackingUnavailable
from flows.tracker import tracker
from serving.redaction import mask_credentials
from tasks import Task

CHAMPION = "champion"


def current_champion(model_name: str) -> ModelVersion | None:
    """The version holding the ``champion`` alias, or ``None`` when there is none yet.

    Only a missing model or alias means "no champion"; any other failure (server down) is retried
    and then raised, never taken as licence to promote.
    """
    try:
        registered = tracker.get_registered_model(model_name)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = registered.aliases.get(CHAMPION)
    if version is None:
        return None
    return tracker.get_model_version(model_name, str(version))


class PromotionLock:
    """Holds the one slot of the ``<model_name>-promotion`` global concurrency limit (created if missing).

    With a SQLite registry, a file lock beside the database is held too: runs in embedded mode each
    have their own temporary Prefect server (one per work folder), so only the file is shared. Used
    as ``with PromotionLock(model_name): ...``.
    """

    def __init__(self, model_name: str, timeout_seconds: float = 1800):
        self.name = f"{model_name}-promotion"
        self.timeout_seconds = timeout_seconds
        self._held = ExitStack()

    def __enter__(self) -> PromotionLock:
        ensure_concurrency_limit(self.name)
        with ExitStack() as acquiring:  # a slot that times out releases the file lock taken before it
            acquiring.enter_context(RegistryFileLock(self.name))
            acquiring.enter_context(
                concurrency(self.name, occupy=1, strict=True, timeout_seconds=self.timeout_seconds)
            )
            self._held = acquiring.pop_all()
        return self

    def __exit__(self, *exception: object) -> None:
        self._held.close()


def ensure_concurrency_limit(name: str) -> None:
    """Create the one-slot global concurrency limit ``name`` unless it exists."""
    with get_client(sync_client=True) as client:
        try:  # read first: creating a limit that exists makes the Prefect server log an error traceback
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with suppress(ObjectAlreadyExists):  # another run created it in the meantime
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


class RegistryFileLock:
    """An exclusive ``flock`` on ``<database>.<name>.lock`` while MLflow tracks to a SQLite file.

    Released when the block ends, or when this process dies; other registries need no file lock.
    """

    def __init__(self, name: str):
        self.name = name
        self._file: IO[str] | None = None

    def __enter__(self) -> RegistryFileLock:
        uri = mlflow.get_tracking_uri()
        if uri.startswith("sqlite:///"):
            database = Path(uri.removeprefix("sqlite:///"))
            self._file = database.with_name(f"{database.name}.{self.name}.lock").open("a")
            fcntl.flock(self._file, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exception: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def servable(model_name: str, version: str, graphs: list[str]) -> bool:
    """Whether a registered version's artifacts hold its bundle: ``bundle.json`` and every ONNX graph."""
    uri = tracker.get_model_version_download_uri(model_name, version)
    listed = tracker.list_artifacts(f"{uri}/artifacts/bundle")
    names = {artifact.path.rsplit("/", 1)[-1] for artifact in listed if artifact.file_size}
    return {"bundle.json", *(f"{graph}.onnx" for graph in graphs)} <= names


def promote(model_name: str, version: str, previous: ModelVersion | None = None) -> None:
    """Point the ``champion`` alias at ``version``, and move the run tag ``champion`` with it.

    The new champion's run is tagged ``champion: version N`` and ``previous``'s ``was version M``; the
    version tags ``champion_since`` and ``champion_until`` date each title. Called under the promotion
    lock, so a run promoting at the same time cannot leave a tag on the wrong run.
    """
    tracker.set_registered_model_alias(model_name, CHAMPION, version)
    now = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if previous is not None:
        tracker.set_model_version_tag(model_name, previous.version, "champion_until", now)
        if previous.run_id:
            tracker.set_run_tag(previous.run_id, CHAMPION, f"was version {previous.version}")
    tracker.set_model_version_tag(model_name, version, "champion_since", now)
    promoted = tracker.get_model_version(model_name, version)
    tracker.set_run_tag(promoted.run_id, CHAMPION, f"version {version}")


@task(name="promote-champion", cache_policy=NO_CACHE)
def promote_best(
    task_: Task,
    rows: list[dict[str, Any]],
    graphs: list[str],
    fingerprint: str | None = None,
    rescore: Callable[[str], float] | None = None,
) -> dict[str, Any]:
    """Move ``champion`` to the best new version only if it beats the current champion.

    Args:
        task_: The task, which names the promotion metric and its direction.
        rows: One summary per trained cell; registered ones carry ``version`` and ``test_<metric>``.
        graphs: The ONNX graphs a servable version of this task holds (the codec's ``graphs``).
        fingerprint: Fingerprint of the data the candidates were scored on.
        rescore: Scores a registered version on that data; used when the champion was scored elsewhere.

    Returns:
        The decision: both scores, both versions, whether it promoted, and why.
    """
    candidates = [r for r in rows if "version" in r]
    if not candidates:
        return {"promoted": False, "reason": "no registered candidate"}
    best = best_candidate(task_, candidates)
    with PromotionLock(f"seqops-{task_.name}"):
        return decide(task_, best, graphs, fingerprint, rescore)


def best_candidate(task_: Task, candidates: list[dict[str, Any]]) -> dict[str, Any]:
    """The candidate with the best test score on the task's promotion metric (the first of equals)."""
    sign = 1 if task_.promotion_direction == "max" else -1
    return max(candidates, key=lambda row: sign * row[f"test_{task_.promotion_metric}"])


def decide(
    task_: Task,
    best: dict[str, Any],
    graphs: list[str],
    fingerprint: str | None,
    rescore: Callable[[str], float] | None,
) -> dict[str, Any]:
    """Compare the best candidate with the current champion and move the alias if it wins (under the lock)."""
    metric, model_name = task_.promotion_metric, f"seqops-{task_.name}"
    score = best[f"test_{metric}"]
    champion = current_champion(model_name)
    incumbent, note = None, ""
    if champion is not None:
        tag = champion.tags.get(f"test_{metric}")
        incumbent = float(tag) if tag is not None else None
        if fingerprint and champion.tags.get("data_fingerprint") != fingerprint and rescore is not None:
            try:
                incumbent, note = rescore(champion.version), " (champion re-scored on this data)"
            except (TrackingUnavailable, MlflowException, ConnectionError, TimeoutError):
                raise  # an outage says nothing about the champion: no decision rather than a wrong one
            except Exception as error:  # a champion that cannot serve this data cannot defend its title
                incumbent, note = (
                    None,
                    f" (champion could not be scored on this data: {mask_credentials(str(error))})",
                )
    decision = {
        "metric": metric,
        "candidate_version": best["version"],
        "candidate": score,
        "champion_version": champion.version if champion else None,
        "champion": incumbent,
    }
    if not task_.is_better(score, incumbent):
        return {
            **decision,
            "promoted": False,
            "reason": f"{metric} {score:.4f} does not beat {incumbent:.4f}{note}",
        }
    if not servable(model_name, best["version"], graphs):
        return {**decision, "promoted": False, "reason": "lacks its ONNX bundle"}
    promote(model_name, best["version"], champion)
    if champion is None:
        reason = "no champion yet"
    elif incumbent is None:
        reason = f"{metric} {score:.4f} promoted{note}"
    else:
        reason = f"{metric} {score:.4f} beats {incumbent:.4f}{note}"
    return {**decision, "promoted": True, "reason": reason}
