"""Batch inference as a Prefect flow: what a scheduled or triggered deployment runs.

The same job as ``seqops predict``. A job that fails for a reason a retry can fix is retried once,
resuming from the chunks the failed attempt finished, so a retry never predicts a row twice; a bad
input, output or bundle fails the run at once, with one line in its log and no traceback.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from pydantic import Field

from flows.retries import transient
from flows.tracker import tracker
from flows.tracking import configure_tracking
from serving.batch import run_batch
from serving.bundle import download_folder
from serving.redaction import mask_credentials
from serving.report import BatchReport


@task(name="resolve-model", cache_policy=NO_CACHE)
def fetch_model(model: str, downloads: Path | None) -> Path:
    """Download the bundle an MLflow URI names into ``downloads`` (or check a local one), through outages."""
    return tracker.download_bundle(model, downloads)


@task(
    name="predict-batch",
    retries=1,
    retry_delay_seconds=30,
    retry_condition_fn=transient,
    cache_policy=NO_CACHE,
)
def predict(bundle: Path, input_path: Path, output_path: Path, options: dict[str, Any]) -> BatchReport:
    """Run the batch job (``serving.batch.run_batch``) with ``options``."""
    return run_batch(bundle, input_path, output_path, show_progress=False, **options)


@flow(name="seqops-batch-predict")
def batch_predict(
    input_path: str,
    output_path: str,
    model: str,
    chunk_size: Annotated[int, Field(ge=1)] = 10_000,
    threads: Annotated[int | None, Field(ge=1)] = None,
    quantize: Literal["int8"] | None = None,
    workers: Annotated[int, Field(ge=1)] = 1,
    track: bool = True,
    reader: str | None = None,
    inference_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Predict every row of a JSONL, CSV or Parquet file with a registered model.

    Args:
        input_path: File of input rows.
        output_path: JSONL or Parquet file for the predictions; bad rows go to ``<output>.errors.jsonl``.
        model: MLflow model URI or bundle folder.
        chunk_size: Rows read, predicted and written at a time (the unit of resumption).
        threads: onnxruntime threads (default: every core).
        quantize: ``int8`` runs the model's int8 variant, if it passed its accuracy gate.
        workers: Dask worker processes on a local cluster (1: in the flow's process).
        track: Log the job's report to the MLflow experiment ``seqops-batch``.
        reader: Read the whole input as one row with this reader of the model's task.
        inference_options: Inference options of the model's task (checked before any work).

    Returns:
        The job's report.
    """
    configure_tracking()
    options = {"chunk_size": chunk_size, "threads": threads, "quantize": quantize, "workers": workers}
    options |= {"reader": reader, "options": inference_options}
    with download_folder(model) as downloads:
        report = predict(fetch_model(model, downloads), Path(input_path), Path(output_path), options)
    get_run_logger().info(report.line())
    summary = {k: v for k, v in asdict(report).items() if not isinstance(v, dict)}
    create_table_artifact(
        table=[{"statistic": k, "value": v} for k, v in summary.items()],
        key="seqops-batch-report",
        description=mask_credentials(f"Batch job: {model} on {input_path}"),
    )
    if track:
        params = {"model": model, "input": input_path, "quantize": quantize or "fp32", "workers": workers}
        tracker.log_report(report, {**params, "chunk_size": chunk_size})
    return asdict(report)
