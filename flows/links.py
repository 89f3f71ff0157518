"""Links into the MLflow UI for what a pipeline run made: runs, registered versions, an experiment's runs."""

from __future__ import annotations

import os
from urllib.parse import quote, urlsplit, urlunsplit

import mlflow

UI_URL_VARIABLE = "SEQOPS_MLFLOW_UI_URL"
LOCAL_UI = "http://127.0.0.1:5000"  # where `make ui` serves the embedded SQLite store
VIEW_KEY = "seqops"  # the saved runs view each task's experiment holds (``flows.parent_run.runs_view``)
# Without it the MLflow 3 UI shows its GenAI pages, which have no link to the model registry.
CLASSIC = "workflowType=machine_learning"


def mlflow_ui_url() -> str:
    """The MLflow UI's address.

    ``SEQOPS_MLFLOW_UI_URL`` when set, else the tracking server's, else the local address ``make ui``
    serves an embedded store on; never with a user name or password.
    """
    parts = urlsplit(os.environ.get(UI_URL_VARIABLE) or mlflow.get_tracking_uri())
    if parts.scheme in ("http", "https"):  # the address only: never a user name or password in a link
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return LOCAL_UI


def run_link(experiment_id: str, run_id: str) -> str:
    """The page of one run."""
    return f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs/{run_id}?{CLASSIC}"


def version_link(model_name: str, version: str | int) -> str:
    """The page of one registered version (its model card is the description)."""
    return f"{mlflow_ui_url()}/#/models/{quote(model_name)}/versions/{version}?{CLASSIC}"


def runs_view_link(experiment_id: str, saved_view: bool = True) -> str:
    """An experiment's classic runs view (not the GenAI overview), with seqops' saved view of it."""
    link = f"{mlflow_ui_url()}/#/experiments/{experiment_id}/runs?{CLASSIC}"
    return f"{link}&viewStateShareKey={VIEW_KEY}" if saved_view else link


def experiment_links() -> list[tuple[str, str]]:
    """Each seqops experiment in the tracking store and the link to its runs view, by name.

    Experiments made before seqops saved a view of them open on the plain runs view.
    """
    found = mlflow.search_experiments(filter_string="name LIKE 'seqops-%'")
    return sorted(
        (e.name, runs_view_link(e.experiment_id, f"mlflow.sharedViewState.{VIEW_KEY}" in e.tags))
        for e in found
    )


def print_ui_links() -> None:
    """Print where the MLflow UI will show each task's runs, sorted by its promotion metric (``make ui``)."""
    from serving.report import use_tracking_uri

    use_tracking_uri()
    links = experiment_links()
    base = mlflow_ui_url()
    print(f"MLflow UI: {base}/#/experiments?{CLASSIC}  (models: {base}/#/models?{CLASSIC})")
    for name, link in links:
        print(f"  {name}: {link}")
    if not links:
        print("  no seqops runs yet: `make run` first")


if __name__ == "__main__":
    print_ui_links()
