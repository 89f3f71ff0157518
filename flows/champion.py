"""The champion gate: a new version takes the ``champion`` alias only if it is better."""

from __future__ import annotations

from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows.tracking import with_retries
from tasks import Task

CHAMPION = "champion"


def champion_score(model_name: str, metric: str) -> tuple[str | None, float | None]:
    """The current champion's version and its test score on ``metric`` (``None`` if there is none)."""
    client = MlflowClient()
    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException:
        return None, None
    score = version.tags.get(f"test_{metric}")
    return version.version, float(score) if score is not None else None


def promote(model_name: str, version: str) -> None:
    """Point the ``champion`` alias at ``version``."""
    client = MlflowClient()
    with_retries(
        lambda: client.set_registered_model_alias(model_name, CHAMPION, version), "set champion alias"
    )


@task(name="promote-champion", cache_policy=NO_CACHE)
def promote_best(task_: Task, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Move ``champion`` to the best new version only if it beats the current champion."""
    metric, model_name = task_.promotion_metric, f"seqops-{task_.name}"
    candidates = [r for r in rows if "version" in r]
    if not candidates:
        return {"promoted": False, "reason": "no registered candidate"}
    sign = 1 if task_.promotion_direction == "max" else -1
    best = max(candidates, key=lambda r: sign * r[f"test_{metric}"])
    incumbent_version, incumbent = champion_score(model_name, metric)
    decision = {
        "metric": metric,
        "candidate_version": best["version"],
        "candidate": best[f"test_{metric}"],
        "champion_version": incumbent_version,
        "champion": incumbent,
    }
    if task_.is_better(best[f"test_{metric}"], incumbent):
        promote(model_name, best["version"])
        reason = (
            "no champion yet" if incumbent is None else f"{metric} {best[f'test_{metric}']} beats {incumbent}"
        )
        return {**decision, "promoted": True, "reason": reason}
    return {
        **decision,
        "promoted": False,
        "reason": f"{metric} {best[f'test_{metric}']} does not beat {incumbent}",
    }
