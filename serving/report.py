"""What a batch job did: counts, throughput, time inside onnxruntime, and its inputs against training.

Printed at the end of every job and, when tracked, logged to MLflow as a run of the
``seqops-batch`` experiment (metrics, parameters and ``report.json``).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any

from serving.profile import compare_profiles
from serving.redaction import has_credentials, masked_values

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


def tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI``, else a SQLite file in the working directory (the project default)."""
    return os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_TRACKING_URI)


def use_tracking_uri() -> str:
    """Point MLflow at ``tracking_uri()``; returns it.

    A URI carrying credentials keeps them out of sight: MLflow then prints no run links, which would
    quote the password.
    """
    import mlflow  # only when tracking: an untracked job needs no tracking client

    uri = tracking_uri()
    if has_credentials(uri):
        os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"
    mlflow.set_tracking_uri(uri)
    return uri


def stage_seconds(chunk_stages: list[dict[str, float]], writing: float, seconds: float) -> dict[str, float]:
    """Where a job's time went: each stage's seconds, summed over the chunks this run predicted.

    ``read``, ``parse`` and ``encode`` run on a second thread (or on the Dask workers) beside the
    others; ``onnxruntime`` is the time inside the graphs divided by the lanes that run batches side by
    side, ``decode`` the rest of predicting; ``wait`` is the time the predicting thread waited for the
    next chunk (in this process only) and ``other`` the rest of its wall time (loading the model,
    checks, the end of the job).

    Args:
        chunk_stages: The ``stages`` of every chunk this run predicted.
        writing: Seconds spent saving the chunks' parts and merging them into the output.
        seconds: The job's wall time.

    Returns:
        Seconds per stage, in the order the stages run.
    """
    names = ("read", "parse", "encode", "wait", "onnxruntime", "decode", "serialise")
    totals = {name: sum(stages.get(name, 0.0) for stages in chunk_stages) for name in names}
    totals["write"] = writing
    if any("wait" in stages for stages in chunk_stages):
        lane = ("wait", "onnxruntime", "decode", "serialise", "write")
        totals["other"] = max(seconds - sum(totals[name] for name in lane), 0.0)
    return totals


@dataclass
class BatchReport:
    """Outcome of a batch job.

    Attributes:
        task: The task the model serves.
        rows: Rows in the input (valid or not).
        predicted: Rows with a prediction.
        errors: Rows in the error file.
        seconds: Wall time of this run.
        rows_per_second: Rows this run processed per second of its wall time.
        ort_share: Share of the inference lanes' wall time spent inside onnxruntime.
        resumed_chunks: Chunks already finished by an earlier, interrupted run.
        chunks: Chunks in the input.
        lanes: Batches predicted at once (threads here, or Dask workers × their threads).
        output: Predictions file.
        errors_file: Error records file (absent when there were none).
        profile: The inputs' statistics (``serving.profile.InputProfile.summary``).
        training_profile: The same statistics on the training split, when the bundle carries them.
        stages: Seconds per stage of the job (``stage_seconds``).
    """

    task: str
    rows: int
    predicted: int
    errors: int
    seconds: float
    rows_per_second: float
    ort_share: float
    resumed_chunks: int
    chunks: int
    lanes: int
    output: str
    errors_file: str
    profile: dict[str, float] = field(default_factory=dict)
    training_profile: dict[str, float] | None = None
    stages: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        """One human-readable summary line."""
        resumed = f", {self.resumed_chunks}/{self.chunks} chunks resumed" if self.resumed_chunks else ""
        return (
            f"{self.rows} rows: {self.predicted} predicted, {self.errors} errors in {self.seconds:.1f}s "
            f"({self.rows_per_second:.0f} rows/s, {self.ort_share:.0%} in onnxruntime{resumed}) "
            f"-> {self.output}" + (f", errors in {self.errors_file}" if self.errors else "")
        )

    def stage_line(self) -> str:
        """Where the time went, one stage after another (``read 0.4 s, parse 1.2 s, ...``)."""
        return "time by stage: " + ", ".join(f"{name} {value:.2f} s" for name, value in self.stages.items())

    def drift(self) -> list[dict[str, Any]]:
        """Input statistics beside the training data's (see ``serving.profile.compare_profiles``)."""
        return compare_profiles(self.profile, self.training_profile)

    def metrics(self) -> dict[str, float]:
        """Numbers worth a metric: counts, speed, and the input profile as ``input_<statistic>``."""
        return {
            "rows": self.rows,
            "predicted": self.predicted,
            "error_rows": self.errors,
            "seconds": self.seconds,
            "rows_per_second": self.rows_per_second,
            "ort_share": self.ort_share,
            **{f"stage_{k}_seconds": v for k, v in self.stages.items()},
            **{f"input_{k}": v for k, v in self.profile.items()},
            **{f"training_{k}": v for k, v in (self.training_profile or {}).items()},
        }


def log_report(report: BatchReport, params: dict[str, Any], experiment: str = "seqops-batch") -> str:
    """Log a batch job to MLflow (see ``tracking_uri``); returns the run id."""
    import mlflow

    use_tracking_uri()
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=f"batch-{report.task}") as run:
        mlflow.log_params(masked_values(params))
        mlflow.log_metrics(report.metrics())
        mlflow.log_dict({**asdict(report), "drift": report.drift()}, "report.json")
        return run.info.run_id
