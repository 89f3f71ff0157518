"""The pages a user opens, as URLs, and what those pages must show once they have loaded.

MLflow 3.17 opens an experiment on its GenAI overview unless the URL asks for
``workflowType=machine_learning`` (an experiment tag does not change that), so every MLflow link here
carries it. The runs view shows metric columns only through a saved/shared view: the pipeline stores one
as the experiment tag ``mlflow.sharedViewState.<key>``, opened with ``viewStateShareKey=<key>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from ui_servers import UiStack, prefect_api

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from playwright.sync_api import Locator, Page

ML = "workflowType=machine_learning"
SHARED_VIEW_TAG = "mlflow.sharedViewState."


def experiment_id(client: MlflowClient, stack: UiStack) -> str:
    """The task's experiment."""
    return client.get_experiment_by_name(stack.model_name).experiment_id


def runs_view_url(client: MlflowClient, stack: UiStack) -> str:
    """The experiment's classic runs view, through the view the pipeline saved for it (when it did)."""
    experiment = client.get_experiment_by_name(stack.model_name)
    url = f"{stack.mlflow_url}/#/experiments/{experiment.experiment_id}/runs?{ML}"
    keys = sorted(
        key.removeprefix(SHARED_VIEW_TAG) for key in experiment.tags if key.startswith(SHARED_VIEW_TAG)
    )
    if keys:
        url += f"&viewStateShareKey={quote(keys[0])}"
    return url


def run_url(stack: UiStack, experiment: str, run_id: str, tab: str = "") -> str:
    """One run's page (``tab``: "", "model-metrics", "artifacts/<path>"...)."""
    return f"{stack.mlflow_url}/#/experiments/{experiment}/runs/{run_id}{'/' + tab if tab else ''}?{ML}"


def version_url(stack: UiStack, version: str) -> str:
    """A registered version's page: its model card is the version's description."""
    return f"{stack.mlflow_url}/#/models/{quote(stack.model_name)}/versions/{version}?{ML}"


def first_plot(client: MlflowClient, run_id: str) -> str:
    """The path of the first PNG the run logged (depth-first over its artifact folders)."""
    folders = [""]
    while folders:
        for item in client.list_artifacts(run_id, folders.pop(0) or None):
            if item.is_dir:
                folders.append(item.path)
            elif item.path.endswith(".png"):
                return item.path
    raise AssertionError(f"run {run_id} logged no PNG plot")


def train_flow_run(stack: UiStack, cell: str) -> tuple[str, str]:
    """Id and name of the Prefect flow run whose task runs trained ``cell`` (pipeline or subflow)."""
    trained = f"{stack.task}/{cell}: train"
    task_runs = prefect_api(stack, "task_runs/filter", {"task_runs": {"name": {"any_": [trained]}}})
    assert task_runs, f"no Prefect task run named {trained!r}"
    flow_run = prefect_api(
        stack, "flow_runs/filter", {"flow_runs": {"id": {"any_": [task_runs[0]["flow_run_id"]]}}}
    )
    return flow_run[0]["id"], flow_run[0]["name"]


def flow_run_url(stack: UiStack, flow_run: str) -> str:
    """A Prefect flow run's page."""
    return f"{stack.prefect_url}/runs/flow-run/{flow_run}"


def loaded_image(page: Page, image: Locator) -> int:
    """Wait until ``image`` has decoded (natural width above 0) and return that width."""
    image.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    return image.evaluate("img => img.naturalWidth")
