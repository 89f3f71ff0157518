"""The ``seqops`` command line: pipeline, train, predict, models.

Heavy modules are imported inside each command, so ``seqops predict`` loads onnxruntime and
never torch, Lightning or Prefect.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from flows.tables import drift_table, summary_tables

app = typer.Typer(
    help="Train, ship and serve recurrent sequence models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(width=None if sys.stdout.isatty() else 160)

TaskOption = Annotated[list[str] | None, typer.Option("--task", "-t", help="Task name; repeat for several.")]
CellOption = Annotated[
    list[str] | None, typer.Option("--cell", "-c", help="rnn, lstm or gru; repeat for several.")
]
ProfileOption = Annotated[str, typer.Option(help="Built-in profile (default, smoke) or a YAML path.")]
DataDirOption = Annotated[
    str | None, typer.Option(help="Local data folder (default: SEQOPS_DATA_DIR or ../shared/data).")
]
WorkDirOption = Annotated[str, typer.Option(help="Folder for caches, checkpoints and bundles.")]


def embedded_defaults(work_dir: str) -> None:
    """Ephemeral Prefect with a project-local home, unless PREFECT_API_URL or PREFECT_HOME say otherwise."""
    os.environ.setdefault("PREFECT_HOME", str(Path(work_dir, "prefect").resolve()))
    Path(os.environ["PREFECT_HOME"]).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "INFO")
    # The temporary API server needs more than the 20 s default on a busy 2-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # Progress bars of sub-second steps (cache writes, artifact downloads) only bury the log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import datasets

    datasets.disable_progress_bars()


def _run(
    tasks: list[str] | None,
    cells: list[str] | None,
    profile: str,
    data_dir: str | None,
    work_dir: str,
    register: bool,
) -> None:
    embedded_defaults(work_dir)
    from flows.config import ConfigError, resolve_run
    from flows.retries import TrackingUnavailable
    from tasks import DataSourceError

    try:
        resolve_run(profile, cells, tasks, data_dir, work_dir)  # fail fast, before Prefect starts
        from flows.pipeline import pipeline

        results = pipeline(
            tasks=tasks,
            cells=cells,
            profile=profile,
            data_dir=data_dir,
            work_dir=work_dir,
            register_models=register,
        )
    except ConfigError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from None
    except DataSourceError as error:
        console.print(f"[red]data error:[/red] {error}")
        raise typer.Exit(2) from None
    except TrackingUnavailable as error:
        console.print(f"[red]tracking server unavailable:[/red] {error}")
        raise typer.Exit(1) from None
    for table in summary_tables(results):
        console.print(table)


@app.command("pipeline")
def pipeline_command(
    task: TaskOption = None,
    cell: CellOption = None,
    profile: ProfileOption = "default",
    data_dir: DataDirOption = None,
    work_dir: WorkDirOption = ".seqops",
) -> None:
    """Train every cell for each task, ship the ONNX models, register them and promote a champion."""
    _run(task, cell, profile, data_dir, work_dir, register=True)


@app.command("train")
def train_command(
    task: TaskOption = None,
    cell: CellOption = None,
    profile: ProfileOption = "default",
    data_dir: DataDirOption = None,
    work_dir: WorkDirOption = ".seqops",
) -> None:
    """Train, export and evaluate (tracked in MLflow) without registering or promoting."""
    _run(task, cell, profile, data_dir, work_dir, register=False)


@app.command("predict")
def predict_command(
    model: Annotated[
        str, typer.Option(help="Bundle folder or MLflow URI, e.g. models:/seqops-sentiment@champion.")
    ],
    input: Annotated[Path, typer.Option("--input", "-i", help="JSONL, CSV or Parquet file of rows.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="JSONL or Parquet file for predictions.")],
    chunk_size: Annotated[
        int, typer.Option(min=1, help="Rows read, predicted and written at a time (the unit of resumption).")
    ] = 10_000,
    threads: Annotated[
        int | None, typer.Option(min=1, help="onnxruntime threads (default: all cores; 1 per Dask worker).")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    series: Annotated[
        bool,
        typer.Option(help="Forecasting: INPUT is one series as CSV (a line per step, the model's columns)."),
    ] = False,
    beam_width: Annotated[
        int | None,
        typer.Option(min=1, max=64, help="Translation: beams to keep (1 = greedy; default: the model's)."),
    ] = None,
    quantize: Annotated[
        str | None,
        typer.Option(help="'int8': the model's int8 variant (only if it passed its accuracy gate)."),
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, help="Dask worker processes on a local cluster (1: this process alone).")
    ] = 1,
    scheduler: Annotated[
        str | None, typer.Option(help="Dask scheduler address (tcp://host:8786) to shard the job across.")
    ] = None,
    track: Annotated[
        bool, typer.Option(help="Log the job's report to MLflow (experiment seqops-batch).")
    ] = False,
) -> None:
    """Batch inference with onnxruntime: predictions to OUTPUT, bad rows to OUTPUT.errors.jsonl.

    A killed job started again with the same arguments resumes from its last finished chunk.
    """
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail as OnnxRuntimeError

    from serving.batch import run_batch
    from serving.predictor import resolve_bundle
    from serving.report import log_report

    expected: tuple[type[Exception], ...] = (FileNotFoundError, ValueError, OnnxRuntimeError)
    if ":/" in model:  # MLflow is imported (seconds) only for a model URI
        from mlflow.exceptions import MlflowException

        expected += (MlflowException,)

    if not input.is_file():
        console.print(f"[red]input file not found:[/red] {input}")
        raise typer.Exit(2)
    if quantize not in (None, "int8"):
        console.print(f"[red]error:[/red] --quantize must be int8, got {quantize!r}")
        raise typer.Exit(2)
    try:
        bundle = resolve_bundle(model)
        report = run_batch(
            bundle,
            input,
            output,
            chunk_size,
            threads,
            progress and sys.stderr.isatty(),
            series,
            beam_width,
            quantize,
            workers,
            scheduler,
        )
    except expected as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    console.print(report.line())
    console.print(drift_table(report.drift()))
    if track:
        params = {"model": model, "input": str(input), "quantize": quantize or "fp32", "workers": workers}
        run_id = log_report(report, {**params, "chunk_size": chunk_size})
        console.print(f"report logged to MLflow run {run_id}")


@app.command("schedule")
def schedule_command(
    deployment: Annotated[
        list[str] | None, typer.Option("--deployment", "-d", help="Only this deployment; repeat for several.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option(help="Deployments in prefect.yaml form (default: infra/prefect.yaml).")
    ] = None,
    check: Annotated[bool, typer.Option(help="Validate and list the deployments, then exit.")] = False,
    work_dir: Annotated[
        str, typer.Option(help="Prefect home without PREFECT_API_URL (flow runs use their own work_dir).")
    ] = ".seqops",
) -> None:
    """Serve the retraining and batch deployments of infra/prefect.yaml on their cron schedules."""
    embedded_defaults(work_dir)
    from flows.config import ConfigError
    from flows.schedules import DEPLOYMENTS_FILE, load_deployments

    try:
        specs = load_deployments(file or DEPLOYMENTS_FILE, deployment)
    except ConfigError as error:
        console.print(f"[red]configuration error:[/red] {error}")
        raise typer.Exit(2) from None
    table = Table("deployment", "flow", "schedule", "parameters", title="seqops deployments")
    for spec in specs:
        crons = ", ".join(f"{s.cron} ({s.timezone})" for s in spec.schedules if s.active) or "on demand"
        table.add_row(spec.name, spec.entrypoint, crons, str(spec.parameters))
    console.print(table)
    if check:
        return
    if not os.environ.get("PREFECT_API_URL"):
        console.print(
            "[yellow]PREFECT_API_URL is not set:[/yellow] serving against a temporary Prefect server, "
            "which creates no scheduled runs; start the servers with `make services-up`."
        )
    from prefect import serve

    from flows.schedules import runner_deployments

    serve(*runner_deployments(specs))


@app.command("models")
def models_command(
    task: Annotated[str | None, typer.Option(help="Only this task's registered model.")] = None,
) -> None:
    """List registered seqops model versions, their aliases and test metrics."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from flows.tracking import configure_tracking

    configure_tracking()
    client = MlflowClient()
    table = Table("model", "version", "aliases", "cell", "metrics", "created")
    names = (
        [f"seqops-{task}"]
        if task
        else [m.name for m in client.search_registered_models("name LIKE 'seqops-%'")]
    )
    for name in names:
        try:
            registered = client.get_registered_model(name)
        except MlflowException:
            console.print(f"no registered model named {name}")
            continue
        aliases: dict[str, list[str]] = {}
        for alias, number in registered.aliases.items():
            aliases.setdefault(str(number), []).append(alias)
        for version in sorted(client.search_model_versions(f"name='{name}'"), key=lambda v: int(v.version)):
            metrics = ", ".join(
                f"{k[5:]}={float(v):.3f}" for k, v in sorted(version.tags.items()) if k.startswith("test_")
            )
            table.add_row(
                name,
                str(version.version),
                ",".join(aliases.get(str(version.version), [])),
                version.tags.get("cell", ""),
                metrics,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(version.creation_timestamp / 1000)),
            )
    console.print(table)


if __name__ == "__main__":
    app()
