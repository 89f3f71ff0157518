"""MLflow tracking and registry: embedded defaults, retries, curves, plots, registration, promotion."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any, TypeVar

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import mlflow
import mlflow.data.huggingface_dataset
import numpy as np
import pytorch_lightning as pl
from mlflow.models.model import ModelInfo
from mlflow.tracking import MlflowClient

from flows.failures import install_log_hygiene
from flows.retries import with_retries
from serving.pyfunc import BUNDLE_ARTIFACT, CODE_PATHS, MODEL_CODE, PIP_REQUIREMENTS
from serving.report import use_tracking_uri
from tasks import Codec, PreparedData, Task
from tasks.common.classification import confusion_matrix

T = TypeVar("T")


def configure_tracking() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI``, or at a SQLite file in the working directory.

    A URI carrying credentials keeps them out of sight: MLflow then prints no run links (they would
    quote the password), and log records are masked (``flows.failures``).

    Returns:
        The tracking URI in use.
    """
    install_log_hygiene()
    return use_tracking_uri()


def use_experiment(name: str, work_dir: Path) -> str:
    """Create (if needed) and activate an experiment; local stores keep artifacts under ``work_dir``."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        local = mlflow.get_tracking_uri().startswith(("sqlite:", "file:"))
        location = (work_dir / "mlartifacts" / name).resolve().as_uri() if local else None
        mlflow.create_experiment(name, artifact_location=location)
    return mlflow.set_experiment(name).experiment_id


class EpochMetricsToMlflow(pl.Callback):
    """Logs every epoch's training and validation metrics to the active MLflow run (learning curves)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Log ``trainer.callback_metrics`` with the epoch as step."""
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        with_retries(lambda: mlflow.log_metrics(metrics, step=trainer.current_epoch), "log epoch metrics")


def confusion_matrix_figure(matrix: np.ndarray, labels: list[str], title: str) -> plt.Figure:
    """A labelled confusion-matrix heat map with counts in the cells."""
    figure, axes = plt.subplots(figsize=(1.2 * len(labels) + 2.5, 1.2 * len(labels) + 2))
    axes.imshow(matrix, cmap="Blues")
    axes.set(
        xticks=range(len(labels)),
        yticks=range(len(labels)),
        xticklabels=labels,
        yticklabels=labels,
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    return figure


def git_commit() -> str:
    """The current git commit of the working directory, or ``unknown`` outside a repository."""
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=5
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def register_version(model_uri: str, model_name: str, tags: dict[str, Any]) -> str:
    """Register a logged model and tag the new version.

    Returns:
        The new version number.
    """
    version = with_retries(lambda: mlflow.register_model(model_uri, model_name), "register model")
    client = MlflowClient()
    for key, value in tags.items():
        with_retries(
            lambda k=key, v=value: client.set_model_version_tag(model_name, version.version, k, str(v)),
            f"tag version {key}",
        )
    return version.version


def log_bundle_model(bundle_dir: Path) -> ModelInfo:
    """Log a bundle as the active run's pyfunc model (the bundle under ``artifacts/bundle``)."""
    return with_retries(
        lambda: mlflow.pyfunc.log_model(
            name="model",
            python_model=str(MODEL_CODE),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            pip_requirements=PIP_REQUIREMENTS,
            code_paths=CODE_PATHS,
        ),
        "log pyfunc model",
    )


def log_lineage(prepared: PreparedData) -> None:
    """Log each split as an MLflow dataset input of the active run."""
    for split, context in (("train", "training"), ("validation", "validation"), ("test", "testing")):
        with warnings.catch_warnings():  # schema inference hints about integer columns, once per split
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.huggingface_dataset.from_huggingface(
                prepared.splits[split], path=prepared.source, name=split, digest=prepared.fingerprint
            )
            with_retries(lambda d=dataset, c=context: mlflow.log_input(d, context=c), "log dataset input")


def forecast_figure(
    histories: np.ndarray, futures: np.ndarray, forecasts: np.ndarray, title: str, panels: int = 4
) -> plt.Figure:
    """History, actual future and forecast for a few test windows spread over the test period."""
    figure, axes = plt.subplots(panels, 1, figsize=(9, 2.2 * panels), sharex=True)
    lookback, horizon = histories.shape[1], futures.shape[1]
    for axis, index in zip(axes, np.linspace(0, len(histories) - 1, panels).astype(int), strict=True):
        axis.plot(range(lookback), histories[index], color="grey", label="history")
        axis.plot(range(lookback, lookback + horizon), futures[index], color="black", label="actual")
        axis.plot(range(lookback, lookback + horizon), forecasts[index], color="tab:red", label="forecast")
        axis.set_ylabel(f"window {index}")
    axes[0].legend(loc="upper left", ncol=3)
    axes[0].set_title(title)
    axes[-1].set_xlabel("time step")
    figure.tight_layout()
    return figure


def attention_figure(records: list[dict[str, Any]], title: str) -> plt.Figure:
    """Attention heat maps, one per translated sentence: output tokens down, source tokens across."""
    figure, axes = plt.subplots(len(records), 1, figsize=(9, 3.2 * len(records)))
    for axis, record in zip(np.atleast_1d(axes), records, strict=True):
        axis.imshow(np.array(record["attention"]), cmap="viridis", aspect="auto")
        axis.set_xticks(range(len(record["source_tokens"])), record["source_tokens"], rotation=60, fontsize=7)
        axis.set_yticks(range(len(record["target_tokens"])), record["target_tokens"], fontsize=7)
    np.atleast_1d(axes)[0].set_title(title)
    figure.tight_layout()
    return figure


def log_translation_examples(task_: Task, bundle_dir: Path, split: Any, title: str, count: int = 20) -> None:
    """Log attention heat maps of four test sentences and a table of example translations."""
    from serving.predictor import Predictor

    predictor = Predictor(bundle_dir)
    rows, references = task_.references(split.select(range(min(count, len(split)))), predictor.codec)
    attended = predictor.predict_rows(rows[:4], keep_attention=True)
    figure = attention_figure(attended, title)
    with_retries(lambda: mlflow.log_figure(figure, "attention.png"), "log attention.png")
    plt.close(figure)
    beam = predictor.predict_rows(rows)
    greedy = predictor.predict_rows(rows, beam_width=1)
    table = {
        "source": [r["text"] for r in rows],
        "reference": references,
        "beam": [p["translation"] for p in beam],
        "greedy": [p["translation"] for p in greedy],
        "beam_score": [p["score"] for p in beam],
    }
    with_retries(lambda: mlflow.log_table(table, "examples.json"), "log example translations")


def log_plots(
    task_: Task, codec: Codec, predictions: list[dict[str, Any]], references: Any, title: str
) -> None:
    """Log the task kind's diagnostic plot: a confusion matrix, or forecasts against actuals."""
    if task_.kind == "classification":
        predicted = np.array([p["label_id"] for p in predictions])
        matrix = confusion_matrix(predicted, np.array(references), len(codec.labels))
        figure, name = confusion_matrix_figure(matrix, codec.labels, title), "confusion_matrix.png"
    elif task_.kind == "regression":
        forecasts = np.array([p["forecast"] for p in predictions])
        figure = forecast_figure(references.histories, references.futures, forecasts, title)
        name = "forecast_vs_actual.png"
    else:
        return
    with_retries(lambda: mlflow.log_figure(figure, name), f"log {name}")
    plt.close(figure)
