"""Classical baselines beside the networks: each task's ``baselines`` hook, scored on the same test split.

Their test metrics go to the pipeline's parent run as ``baseline/<name>/<metric>`` and into the result
tables as rows of their own; they are never registered, promoted or served. A baseline that cannot
run on this data says why (tag ``baseline_<name>``), and the run goes on.
"""

from __future__ import annotations

import time
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from flows.tracker import tracker
from tasks import PreparedData, Task
from tasks.common.hooks import BaselineSkipped


@task(name="score-baselines", cache_policy=NO_CACHE)
def score_baselines(task_: Task, prepared: PreparedData) -> list[dict[str, Any]]:
    """Fit and score every baseline of the task; log them to the active (parent) run.

    Returns:
        One result row per baseline: ``cell`` (``baseline <name>``), seconds, ``test_*`` and ``status``.
    """
    rows = []
    for name, fit_and_score in task_.baselines(prepared).items():
        started = time.perf_counter()
        try:
            metrics = fit_and_score()
        except BaselineSkipped as reason:
            get_run_logger().warning("%s: baseline %s skipped: %s", task_.name, name, reason)
            tracker.set_tag(f"baseline_{name}", f"skipped: {reason}")
            rows.append({"cell": f"baseline {name}", "status": f"skipped: {reason}"})
            continue
        seconds = time.perf_counter() - started
        tracker.log_metrics({f"baseline/{name}/{metric}": value for metric, value in metrics.items()})
        tracker.set_tag(f"baseline_{name}", f"scored in {seconds:.1f} s")
        get_run_logger().info("%s: baseline %s: %s", task_.name, name, _headline(task_, metrics))
        row = {"cell": f"baseline {name}", "train_seconds": round(seconds, 1)}
        rows.append(
            row | {f"test_{k}": v for k, v in metrics.items()} | {"status": "baseline (not promoted)"}
        )
    return rows


def _headline(task_: Task, metrics: dict[str, float]) -> str:
    return f"test {task_.promotion_metric} {metrics[task_.promotion_metric]:.4f}"
