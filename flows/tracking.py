"""MLflow tracking: embedded defaults, curves, lineage, task diagnostics, the logged model, registration."""

from __future__ import annotations

import logging
import subprocess
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: plots are files for MLflow, never windows
import matplotlib.pyplot as plt
import pandas as pd
import pytorch_lightning as pl
from mlflow.models import ModelSignature, infer_signature
from mlflow.models.model import ModelInfo

from flows.failures import install_log_hygiene
from flows.tracker import tracker
from models.family import get_family
from serving.pyfunc import BUNDLE_ARTIFACT, CODE_PATHS, MODEL_CODE, PIP_REQUIREMENTS
from serving.report import use_tracking_uri
from tasks import Codec, Task
from tasks.common.hooks import Evaluation, Figure

# MLflow's hint on every schema with an integer column; the codec, not the schema, handles missing values.
INTEGER_HINT = r"Hint: Inferred schema contains integer"
# Progress chatter of MLflow's system-metrics thread and input-example check, at INFO for every run.
QUIET_LOGGERS = ("mlflow.system_metrics", "mlflow.pyfunc")
DESCRIPTION = "mlflow.note.content"  # the tag the MLflow UI shows as a run's (or experiment's) description


def configure_tracking() -> str:
    """Point MLflow at ``MLFLOW_TRACKING_URI``, or at a SQLite file in the working directory.

    A URI carrying credentials keeps them out of sight: MLflow then prints no run links (they would
    quote the password), and log records are masked (``flows.failures``).

    Returns:
        The tracking URI in use.
    """
    install_log_hygiene()
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    return use_tracking_uri()


def curve_name(name: str) -> str:
    """The MLflow name of a Lightning metric: ``train_loss`` is ``train/loss``, ``val_f1`` is ``val/f1``.

    The prefix is the chart section the MLflow UI groups a metric under; the learning rate joins ``train/``.
    """
    stage, _, rest = name.partition("_")
    if stage in ("train", "val") and rest:
        return f"{stage}/{rest}"
    return f"train/{name}"


class EpochMetricsToMlflow(pl.Callback):
    """Logs every epoch's training and validation metrics to the active MLflow run (learning curves).

    Attributes:
        history: Every epoch's metrics under their MLflow names, for the learning-curves plot.
    """

    def __init__(self) -> None:
        self.history: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Log ``trainer.callback_metrics`` with the epoch as step."""
        metrics = {curve_name(name): float(value) for name, value in trainer.callback_metrics.items()}
        self.history.append({"epoch": trainer.current_epoch, **metrics})
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
    """The git commit of the seqops code that runs (not of the working directory), ``+dirty`` when edited.

    Installed from a package rather than a checkout, it is the package's version (``seqops 0.1.0``).
    """
    source = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(source), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        return f"{commit}+dirty" if changed else commit
    except (OSError, subprocess.SubprocessError):
        try:
            return f"seqops {version('seqops')}"
        except PackageNotFoundError:
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


def log_bundle_model(
    bundle_dir: Path, name: str = "model", example: tuple[list[dict], list[dict]] | None = None
) -> ModelInfo:
    """Log a bundle as the active run's pyfunc model (the bundle under ``artifacts/bundle``).

    Args:
        bundle_dir: The exported bundle.
        name: The logged model's name (``<task>-<cell>``: what the MLflow UI lists it by).
        example: A few input rows and the bundle's predictions for them: the model's signature and input
            example, which the MLflow UI shows and serving checks requests against.

    Returns:
        The logged model's info (its URI and id).
    """
    signature = input_example = None
    if example is not None:
        rows, predictions = (pd.DataFrame(part) for part in example)
        signature, input_example = output_signature(rows, predictions), rows
    with warnings.catch_warnings():  # MLflow re-infers the example's schema: the same hint again
        warnings.filterwarnings("ignore", message=INTEGER_HINT, category=UserWarning)
        return tracker.log_pyfunc_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
            pip_requirements=PIP_REQUIREMENTS,
            code_paths=CODE_PATHS,
            signature=signature,
            input_example=input_example,
        )


def output_signature(rows: pd.DataFrame, predictions: pd.DataFrame) -> ModelSignature:
    """The model's signature: the columns of its predictions; its inputs are shown by the input example.

    An input schema would make MLflow enforce it before the model sees a request: it drops the columns
    it does not name (a misspelt field, then the whole row), rejects a batch for one value of the wrong
    type and turns a list of strings into nothing. The codec judges each row instead, so every bad row
    comes back as an error row with its reason and the other rows are still predicted.
    """
    with warnings.catch_warnings():  # MLflow's hint about integer columns and missing values
        warnings.filterwarnings("ignore", message=INTEGER_HINT, category=UserWarning)
        inferred = infer_signature(rows, predictions)
    return ModelSignature(inputs=None, outputs=inferred.outputs)


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
