"""The MLflow calls the pipeline makes, each one retried through outages: ``tracker.log_params(params)``.

Every public method of ``Tracker`` makes one call (a download, a batch report or an experiment's
activation counts as one) through ``flows.retries.with_retries``, which names it after the method and
what it touched (``log attention.png``, ``set tags int8, int8_gate``) when the call fails for good.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import mlflow
from mlflow.tracking import MlflowClient

from flows.retries import with_retries
from serving.bundle import resolve_bundle
from serving.report import log_report

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from mlflow.data.dataset import Dataset
    from mlflow.entities import FileInfo, Run
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel
    from mlflow.models import ModelSignature
    from mlflow.models.model import ModelInfo

    from serving.report import BatchReport

P = ParamSpec("P")
T = TypeVar("T")


def _names(mapping: Mapping[str, Any], shown: int = 3) -> str:
    """The first ``shown`` keys of ``mapping``, and how many more there are."""
    names = list(mapping)
    more = f" (+{len(names) - shown})" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


class Tracker:
    """The pipeline's MLflow calls (active run, runs by id, registry, downloads), each retried.

    Attempts and backoff come from ``SEQOPS_MLFLOW_ATTEMPTS`` and ``SEQOPS_MLFLOW_BACKOFF``; a call that
    still fails raises ``TrackingUnavailable`` naming it, a permanent error (no such model) at once.
    Each call reads the tracking URI in force when it is made.
    """

    @staticmethod
    def _retry(what: str, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        return with_retries(lambda: call(*args, **kwargs), what)

    # The active run.

    def use_experiment(self, name: str, work_dir: Path) -> str:
        """Create (if needed) and activate an experiment; local stores keep artifacts under ``work_dir``."""
        return self._retry(f"use experiment {name}", _use_experiment, name, work_dir)

    def log_params(self, params: dict[str, Any]) -> None:
        """Log parameters to the active run."""
        self._retry("log params", mlflow.log_params, params)

    def log_metrics(
        self,
        metrics: dict[str, float],
        step: int | None = None,
        model_id: str | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        """Log metrics to the active run, at ``step`` (an epoch, say), of a logged model on a dataset."""
        at = "" if step is None else f" at step {step}"
        call = mlflow.log_metrics
        linked = {k: v for k, v in (("model_id", model_id), ("dataset", dataset)) if v is not None}
        self._retry(f"log metrics {_names(metrics)}{at}", call, metrics, step=step, **linked)

    def set_tag(self, key: str, value: Any) -> None:
        """Set one tag of the active run."""
        self._retry(f"set tag {key}", mlflow.set_tag, key, value)

    def set_tags(self, tags: dict[str, Any]) -> None:
        """Set tags of the active run."""
        self._retry(f"set tags {_names(tags)}", mlflow.set_tags, tags)

    def log_dict(self, dictionary: dict[str, Any], artifact_file: str) -> None:
        """Log a dictionary as a JSON (or YAML) artifact of the active run."""
        self._retry(f"log {artifact_file}", mlflow.log_dict, dictionary, artifact_file)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        """Log a matplotlib figure as an image artifact of the active run."""
        self._retry(f"log {artifact_file}", mlflow.log_figure, figure, artifact_file)

    def log_table(self, data: dict[str, list[Any]], artifact_file: str) -> None:
        """Log columns of equal length as a table artifact of the active run."""
        self._retry(f"log {artifact_file}", mlflow.log_table, data, artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        """Log a text as an artifact file of the active run."""
        self._retry(f"log {artifact_file}", mlflow.log_text, text, artifact_file)

    def log_artifact(self, local_path: Path | str, artifact_path: str | None = None) -> None:
        """Log a local file as an artifact of the active run, under ``artifact_path``."""
        name = f"{artifact_path}/{Path(local_path).name}" if artifact_path else Path(local_path).name
        self._retry(f"log {name}", mlflow.log_artifact, str(local_path), artifact_path)

    def log_input(self, dataset: Dataset, context: str) -> None:
        """Log a dataset as an input of the active run (``training``, ``validation``, ``testing``)."""
        self._retry(f"log {context} dataset input", mlflow.log_input, dataset, context=context)

    def log_pyfunc_model(
        self,
        name: str,
        python_model: str,
        artifacts: dict[str, str],
        pip_requirements: list[str],
        code_paths: list[str],
        signature: ModelSignature | None = None,
        input_example: Any = None,
    ) -> ModelInfo:
        """Log a models-from-code pyfunc model in the active run, with its signature and input example."""
        return self._retry(
            f"log pyfunc model {name}",
            mlflow.pyfunc.log_model,
            name=name,
            python_model=python_model,
            artifacts=artifacts,
            pip_requirements=pip_requirements,
            code_paths=code_paths,
            signature=signature,
            input_example=input_example,
        )

    # Runs by id.

    def search_runs(self, experiment_ids: list[str], filter_string: str) -> list[Run]:
        """The runs of these experiments that match ``filter_string``."""
        return self._retry(
            f"search runs {filter_string}", MlflowClient().search_runs, experiment_ids, filter_string
        )

    def set_run_tag(self, run_id: str, key: str, value: Any) -> None:
        """Set one tag of the run ``run_id`` (active or not)."""
        self._retry(f"tag run {run_id} {key}", MlflowClient().set_tag, run_id, key, value)

    def set_terminated(self, run_id: str, status: str) -> None:
        """End the run ``run_id`` with ``status`` (``FINISHED``, ``FAILED``, ``KILLED``)."""
        self._retry(f"end run {run_id} {status}", MlflowClient().set_terminated, run_id, status)

    def log_run_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Log a text as an artifact file of the run ``run_id`` (active or not)."""
        self._retry(
            f"log {artifact_file} to run {run_id}", MlflowClient().log_text, run_id, text, artifact_file
        )

    def set_experiment_tags(self, experiment_id: str, tags: dict[str, str]) -> None:
        """Set tags of an experiment (its description is the tag ``mlflow.note.content``)."""
        client = MlflowClient()
        for key, value in tags.items():
            self._retry(
                f"tag experiment {experiment_id} {key}", client.set_experiment_tag, experiment_id, key, value
            )

    # The model registry.

    def update_registered_model(self, name: str, description: str) -> None:
        """Set a registered model's description."""
        call = MlflowClient().update_registered_model
        self._retry(f"describe model {name}", call, name, description=description)

    def update_model_version(self, name: str, version: str, description: str) -> None:
        """Set a registered version's description (its model card)."""
        call = MlflowClient().update_model_version
        self._retry(f"describe {name} version {version}", call, name, version, description=description)

    def register_model(self, model_uri: str, name: str) -> ModelVersion:
        """Register a logged model as a new version of the registered model ``name``."""
        return self._retry(f"register model {name}", mlflow.register_model, model_uri, name)

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        """Set one tag of a registered model version."""
        call = MlflowClient().set_model_version_tag
        self._retry(f"tag {name} version {version} {key}", call, name, version, key, value)

    def get_registered_model(self, name: str) -> RegisteredModel:
        """A registered model, with its aliases (``RESOURCE_DOES_NOT_EXIST`` when there is none)."""
        return self._retry(f"read model {name}", MlflowClient().get_registered_model, name)

    def search_registered_models(self, filter_string: str) -> list[RegisteredModel]:
        """The registered models matching ``filter_string``."""
        return self._retry(
            f"search models {filter_string}", MlflowClient().search_registered_models, filter_string
        )

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        """One version of a registered model, with its tags."""
        return self._retry(f"read {name} version {version}", MlflowClient().get_model_version, name, version)

    def search_model_versions(self, filter_string: str) -> list[ModelVersion]:
        """The registered model versions matching ``filter_string``."""
        return self._retry(
            f"search versions {filter_string}", MlflowClient().search_model_versions, filter_string
        )

    def get_model_version_download_uri(self, name: str, version: str) -> str:
        """Where a registered version's artifacts are stored."""
        call = MlflowClient().get_model_version_download_uri
        return self._retry(f"read {name} version {version} source", call, name, version)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        """Point a registered model's ``alias`` at ``version``."""
        call = MlflowClient().set_registered_model_alias
        self._retry(f"set {name} alias {alias}", call, name, alias, version)

    def list_artifacts(self, artifact_uri: str) -> list[FileInfo]:
        """The artifacts directly under ``artifact_uri``."""
        return self._retry(f"list {artifact_uri}", mlflow.artifacts.list_artifacts, artifact_uri=artifact_uri)

    # Downloads and batch reports.

    def download_bundle(self, model: str, downloads: Path | None) -> Path:
        """The bundle folder an MLflow URI names, downloaded into ``downloads`` (or a local one, checked)."""
        return self._retry(f"download {model}", resolve_bundle, model, downloads)

    def log_report(self, report: BatchReport, params: dict[str, Any]) -> str:
        """Log a batch job's report as a run of the ``seqops-batch`` experiment; returns the run id."""
        return self._retry("log batch report", log_report, report, params)


def _use_experiment(name: str, work_dir: Path) -> str:
    """Create (if needed) and activate an experiment (one attempt; see ``Tracker.use_experiment``)."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        local = mlflow.get_tracking_uri().startswith(("sqlite:", "file:"))
        location = (work_dir / "mlartifacts" / name).resolve().as_uri() if local else None
        mlflow.create_experiment(name, artifact_location=location)
    return mlflow.set_experiment(name).experiment_id


tracker = Tracker()
