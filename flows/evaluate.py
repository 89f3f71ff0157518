"""Evaluation stage: the test split scored through onnxruntime, fp32 and (gated) int8.

Both run the exported bundle exactly as the batch job will, so the logged numbers are the
numbers a user gets.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from serving.bundle import update_metadata
from serving.predictor import Predictor
from serving.quantize import GateDecision, discard_int8, int8_gate, quantize_graphs
from tasks import get_task


@dataclass
class Scored:
    """A bundle's scores on a split, and what they were computed from.

    Attributes:
        metrics: The task's metrics (and those of its evaluation variants, suffixed ``_<variant>``).
        rows: The input rows, as a batch job reads them.
        predictions: The bundle's prediction per row.
        references: What the predictions were scored against.
        seconds: Wall time of predicting every row (fp32, default options) in one batch.
    """

    metrics: dict[str, float]
    rows: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    references: list
    seconds: float

    @property
    def ms_per_row(self) -> float:
        """Prediction wall time per row, in milliseconds."""
        return 1000 * self.seconds / max(len(self.rows), 1)


@task(name="evaluate-onnx", cache_policy=NO_CACHE)
def evaluate(task_name: str, bundle_dir: Path, split: Any) -> Scored:
    """Score the test split with the bundle's fp32 graphs (and the task's evaluation variants)."""
    task_, predictor = get_task(task_name), Predictor(bundle_dir)
    rows, references = task_.references(split, predictor.codec)
    started = time.perf_counter()
    predictions = predictor.predict_rows(rows)
    seconds = time.perf_counter() - started
    metrics = task_.metrics(predictions, references)
    for variant, options in task_.evaluation_variants.items():
        scores = task_.metrics(predictor.predict_rows(rows, **options), references)
        metrics.update({f"{name}_{variant}": value for name, value in scores.items()})
    return Scored(metrics, rows, predictions, references, seconds)


@task(name="quantize-int8", cache_policy=NO_CACHE)
def quantize_int8(
    task_name: str, bundle_dir: Path, split: Any, fp32_metrics: dict[str, float], tolerance_points: float
) -> tuple[GateDecision, dict[str, float]]:
    """Quantise the bundle's graphs, score them on the test split, and keep them only if the gate accepts.

    Args:
        task_name: The task the bundle serves.
        bundle_dir: The bundle; gains ``int8/`` (if accepted) and an ``int8`` entry in ``bundle.json``.
        split: The test split.
        fp32_metrics: The fp32 graphs' test metrics.
        tolerance_points: Largest loss of the promotion metric allowed, in points.

    Returns:
        The gate's decision and the int8 graphs' test metrics.
    """
    task_ = get_task(task_name)
    quantize_graphs(bundle_dir, task_.load_codec(bundle_dir).graphs)
    predictor = Predictor(bundle_dir, quantize="int8", require_gate=False)
    rows, references = task_.references(split, predictor.codec)
    metrics = task_.metrics(predictor.predict_rows(rows), references)
    name = task_.promotion_metric
    decision = int8_gate(
        name,
        fp32_metrics[name],
        metrics[name],
        tolerance_points,
        task_.promotion_direction,
        task_.metric_points,
    )
    if not decision.accepted:
        discard_int8(bundle_dir)
    update_metadata(bundle_dir, int8=decision.to_json())
    return decision, metrics
