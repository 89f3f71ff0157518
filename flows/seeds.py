"""Repeated seeds: a cell trained ``seeds`` times, reported as mean ± standard deviation on test.

Each seed is a run of its own under the cell's run, shipped like any cell but not registered. The
seed with the best validation score (never test) is the one registered; its own test scores are the
version's, so the champion gate compares one model with one model on the same test split, as with
a single seed. The cell's run and its result row add ``test_<metric>_mean`` and ``_std`` (sample
standard deviation) over the seeds that shipped.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from flows.cell import Shipment, ship_cell, version_tags
from flows.cell_checkpoints import cell_checkpoints
from flows.config import TaskSettings
from flows.lineage import log_lineage
from flows.retries import tracked_run
from flows.tracker import tracker
from flows.tracking import register_version


def seeded(settings: TaskSettings, offset: int) -> TaskSettings:
    """The settings with the training seed moved on by ``offset``."""
    train = settings.train.model_copy(update={"seed": settings.train.seed + offset})
    return settings.model_copy(update={"train": train})


def seed_spread(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean and sample standard deviation of every test metric the rows share."""
    shared = set.intersection(*(set(row) for row in rows))
    keys = sorted(k for k in shared if k.startswith("test_") and isinstance(rows[0][k], int | float))
    spread = {}
    for key in keys:
        values = np.array([row[key] for row in rows], dtype=float)
        spread[f"{key}_mean"] = float(values.mean())
        spread[f"{key}_std"] = float(values.std(ddof=1)) if len(values) > 1 else 0.0
    return spread


def best_on_validation(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The row with the best validation score (the first of equals)."""
    sign = 1 if rows[0]["validation_better"] == "max" else -1
    return max(rows, key=lambda row: sign * row["validation_score"])


def ship_cell_runs(shipment: Shipment, settings: TaskSettings, cell: str) -> dict[str, Any]:
    """Ship a cell in the active (cell) run; with several seeds, one nested run each.

    With seeds, the seed best on validation is the one registered.

    Returns:
        The shipped (or registered seed's) row; with seeds, the spread (``seeds``, ``test_*_mean``, ``_std``).
    """
    task_, prepared = shipment.task, shipment.prepared
    if shipment.profile.seeds == 1:
        with cell_checkpoints(task_.name, prepared, settings, cell, shipment.work_dir) as checkpoints:
            return ship_cell(shipment, settings, cell, checkpoints)
    rows = []
    for offset in range(shipment.profile.seeds):
        settings_ = seeded(settings, offset)
        with (
            tracked_run(f"{task_.name}-{cell}-seed{settings_.train.seed}", nested=True, system_metrics=True),
            cell_checkpoints(task_.name, prepared, settings_, cell, shipment.work_dir) as checkpoints,
        ):
            rows.append(ship_cell(replace(shipment, register=False), settings_, cell, checkpoints))
    shipped = [row for row in rows if "model_uri" in row]
    if not shipped:
        return {"cell": cell, "seeds": 0, "status": f"no seed shipped: {rows[0]['status']}"}
    spread = seed_spread(shipped)
    chosen = best_on_validation(shipped)
    tracker.log_metrics(
        {f"test/{k.removeprefix('test_')}": v for k, v in spread.items()} | {"ship/seeds": len(shipped)}
    )
    tracker.set_tags({"selected_seed": chosen["seed"], "selected_run": chosen["run_id"]})
    row = {**chosen, **spread, "seeds": len(shipped), "status": "logged"}
    if shipment.register:
        tags = version_tags(task_, prepared, row) | {"seeds": len(shipped)}
        row["version"] = register_version(chosen["model_uri"], f"seqops-{task_.name}", tags)
        row["status"] = "registered"
    return row


def ship_cell_run(
    shipment: Shipment, settings: TaskSettings, cell: str, parent_run_id: str | None = None
) -> dict[str, Any]:
    """Ship a cell in an MLflow run of its own, nested under the active run or ``parent_run_id``.

    ``parent_run_id`` is for a cell shipped in another process than its parent run's
    (``flows.parallel_cells``).
    """
    name = f"{shipment.task.name}-{cell}"
    nested = parent_run_id is None
    with tracked_run(name, nested=nested, system_metrics=True, parent_run_id=parent_run_id):
        log_lineage(shipment.datasets)
        return ship_cell_runs(shipment, settings, cell)
