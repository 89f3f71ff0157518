"""MLflow tracking: embedded defaults, curves, lineage, task diagnostics, the logged model, registration."""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import mlflow
import mlflow.data.huggingface_dataset
import pytorch_lightning as pl
from mlflow.models.model import ModelInfo

from flows.failures import install_log_hygiene
from flows.tracker import tracker
from models.family import get_family
from serving.pyfunc import BUNDLE_ARTIFACT, CODE_PATHS, MODEL_CODE, PIP_REQUIREMENTS
from serving.report import use_tracking_uri
from tasks import Codec, PreparedData, Task
from tasks.common.hooks import Evaluation, Figure


def configure_tracking() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI``, or at a SQLite file in the working directory.

    A URI carrying credentials keeps them out of sight: MLflow then prints no run links (they would
    quote the password), and log records are masked (``flows.failures``).

    Returns:
        The tracking URI in use.
    """
    install_log_hygiene()
    return use_tracking_uri()


class EpochMetricsToMlflow(pl.Callback):
    """Logs every epoch's training and validation metrics to the active MLflow run (learning curves)."""

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Log ``trainer.callback_metrics`` with the epoch as step."""
        metrics = {name: float(value) for name, value in trainer.callback_metrics.items()}
        tracker.log_metrics(metrics, step=trainer.current_epoch)


class EpochSamplesToMlflow(pl.Callback):
    """Logs what a task's ``training_samples`` hook makes of the network in training, after every epoch.

    Args:
        task_: The task being trained (most tasks have no samples: then nothing runs).
        codec: Its codec.
    """

    def __init__(self, task_: Task, codec: Codec):
        self.task, self.codec = task_, codec

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Run the hook with the network in eval mode, log each text as ``samples/epoch-<n>-<name>.txt``."""
        network, runner = module.network, None
        training = network.training

        def run(graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
            nonlocal runner
            runner = runner or get_family(self.task.family).torch_runner(network)
            return runner(graph, feeds)

        try:
            texts = self.task.training_samples(run, self.codec)
        finally:
            network.train(training)
        for name, text in texts.items():
            tracker.log_text(text, f"samples/epoch-{trainer.current_epoch:03d}-{name}.txt")


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
    version = tracker.register_model(model_uri, model_name)
    for key, value in tags.items():
        tracker.set_model_version_tag(model_name, version.version, key, str(value))
    return version.version


def log_bundle_model(bundle_dir: Path) -> ModelInfo:
    """Log a bundle as the active run's pyfunc model (the bundle under ``artifacts/bundle``)."""
    return tracker.log_pyfunc_model(
        name="model",
        python_model=str(MODEL_CODE),
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        pip_requirements=PIP_REQUIREMENTS,
        code_paths=CODE_PATHS,
    )


def log_lineage(prepared: PreparedData) -> None:
    """Log each split as an MLflow dataset input of the active run."""
    for split, context in (("train", "training"), ("validation", "validation"), ("test", "testing")):
        with warnings.catch_warnings():  # schema inference hints about integer columns, once per split
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.huggingface_dataset.from_huggingface(
                prepared.splits[split], path=prepared.source, name=split, digest=prepared.fingerprint
            )
            tracker.log_input(dataset, context)


def log_diagnostics(
    task_: Task, bundle_dir: Path, split: Any, scored: tuple[list[dict[str, Any]], Any], title: str
) -> None:
    """Log the plots and tables a task's ``diagnostics`` hook makes of a trained model's test predictions.

    Args:
        task_: The task.
        bundle_dir: The exported bundle, which the hook may run on other rows or options.
        split: The test split.
        scored: The test predictions and the references they were scored against.
        title: A caption naming the task and cell.
    """
    from serving.predictor import Predictor

    predictor = Predictor(bundle_dir)
    evaluation = Evaluation(predictor.codec, split, *scored, predictor.predict_rows, title)
    for artifact in task_.diagnostics(evaluation):
        if isinstance(artifact, Figure):
            tracker.log_figure(artifact.figure, artifact.name)
            plt.close(artifact.figure)
        else:
            tracker.log_table(artifact.columns, artifact.name)
