"""The ``seqops`` command line: pipeline, train, tune, predict, models, schedule.

Heavy modules are imported inside each command, so ``seqops predict`` loads onnxruntime and
never torch, Lightning or Prefect. Every command ends a failure with one line and an exit status
(2: something to fix in the invocation, settings, input, output or bundle; 1: an outage or a bug);
``--debug`` anywhere on the command line (or ``SEQOPS_DEBUG=1``) adds the traceback.
"""

from __future__ import annotations

import json
import os
import sys
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flows.console import (
    CellOption,
    DataDirOption,
    ParallelOption,
    ProfileOption,
    TaskOption,
    WorkDirOption,
    api_for_workers,
    console,
    embedded_defaults,
    guarded,
)
from flows.failures import DEBUG_VARIABLE, debugging, install_log_hygiene
from flows.report_cli import report_command
from flows.tables import drift_table, summary_tables
from flows.tune_cli import tune_command

app = typer.Typer(
    help="Train, ship and serve recurrent sequence models. Add --debug (or set SEQOPS_DEBUG=1) to see "
    "the traceback of a failure.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


def _run(
    tasks: list[str] | None,
    cells: list[str] | None,
    profile: str,
    data_dir: str | None,
    work_dir: str,
    register: bool,
    parallel: int = 1,
) -> None:
    from flows.config import resolve_run
    from flows.parallel_cells import check_parallel

    settings, configs = resolve_run(profile, cells, tasks, data_dir, work_dir)  # fail fast, before Prefect
    check_parallel(parallel, settings, list(configs))
    embedded_defaults(work_dir)
    from prefect import tags

    from flows.live import live_progress
    from flows.pipeline import pipeline, run_tags

    workers_api = api_for_workers() if parallel > 1 else nullcontext()
    with tags(*run_tags(settings.name, list(configs), list(settings.cells))), workers_api, live_progress():
        results = pipeline(
            tasks=list(configs),  # the names, not null: what the Prefect UI shows as the run's parameters
            cells=cells,
            profile=profile,
            data_dir=data_dir,
            work_dir=work_dir,
            register_models=register,
            parallel=parallel,
        )
    for table in summary_tables(results):
        console.print(table)
    report = Path(work_dir) / "report.html"
    if report.is_file():
        console.print(f"bake-off report: {report.resolve()}")


@app.command("pipeline")
@guarded
def pipeline_command(
    task: TaskOption = None,
    cell: CellOption = None,
    profile: ProfileOption = "default",
    data_dir: DataDirOption = None,
    work_dir: WorkDirOption = ".seqops",
    parallel: ParallelOption = 1,
) -> None:
    """Train every cell for each task, ship the ONNX models, register them and promote a champion."""
    _run(task, cell, profile, data_dir, work_dir, register=True, parallel=parallel)


@app.command("train")
@guarded
def train_command(
    task: TaskOption = None,
    cell: CellOption = None,
    profile: ProfileOption = "default",
    data_dir: DataDirOption = None,
    work_dir: WorkDirOption = ".seqops",
    parallel: ParallelOption = 1,
) -> None:
    """Train, export and evaluate (tracked in MLflow) without registering or promoting."""
    _run(task, cell, profile, data_dir, work_dir, register=False, parallel=parallel)


@app.command("predict")
@guarded
def predict_command(
    model: Annotated[
        str, typer.Option(help="Bundle folder or MLflow URI, e.g. models:/seqops-<task>@champion.")
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
    reader: Annotated[
        str | None,
        typer.Option(help="Read all of INPUT as one row with a reader of the model's task (e.g. series)."),
    ] = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option", "-O", help="An inference option of the model's task as KEY=VALUE (e.g. beam_width=5)."
        ),
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
    device: Annotated[
        str, typer.Option(help="'cpu', or 'cuda': onnxruntime's CUDA execution provider (onnxruntime-gpu).")
    ] = "cpu",
    report_file: Annotated[
        Path | None,
        typer.Option("--report", help="Also write the job's report (counts, speed, time by stage) as JSON."),
    ] = None,
) -> None:
    """Batch inference with onnxruntime: predictions to OUTPUT, bad rows to OUTPUT.errors.jsonl.

    A killed job started again with the same arguments resumes from its last finished chunk.
    """
    from flows.config import parse_options
    from serving.batch import run_batch
    from serving.bundle import download_folder, resolve_bundle
    from serving.chunks import check_input
    from serving.errors import JobError
    from serving.ownership import check_paths
    from serving.predictor import check_device

    if quantize not in (None, "int8"):
        raise JobError(f"--quantize must be int8, got {quantize!r}")
    check_device(device)
    if report_file and (report_file.is_dir() or not report_file.parent.is_dir()):
        raise JobError(f"--report {report_file}: not a file in an existing folder")
    check_input(input)  # before a model is downloaded; the job checks them again
    check_paths(input, output)
    with download_folder(model) as downloads:
        report = run_batch(
            resolve_bundle(model, downloads),
            input,
            output,
            chunk_size,
            threads,
            progress and sys.stderr.isatty(),
            reader,
            parse_options(option or []),
            quantize,
            workers,
            scheduler,
            device,
        )
    console.print(report.line())
    console.print(report.stage_line(), style="dim")
    console.print(drift_table(report.drift()))
    if report_file:
        report_file.write_text(json.dumps(asdict(report), indent=2))
    if track:
        params = {"model": model, "input": str(input), "quantize": quantize or "fp32", "workers": workers}
        from flows.tracker import tracker

        run_id = tracker.log_report(report, {**params, "chunk_size": chunk_size})
        console.print(f"report logged to MLflow run {run_id}")


@app.command("schedule")
@guarded
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
    from flows.config import check_work_dir, read_yaml

    check_work_dir(work_dir)  # before anything is created there
    if file is not None:
        read_yaml(file, "deployments file")
    embedded_defaults(work_dir)
    from flows.schedules import DEPLOYMENTS_FILE, load_deployments

    specs = load_deployments(file or DEPLOYMENTS_FILE, deployment)
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
    from flows.schedules import runner_deployments
    from flows.serve import serve_until_stopped

    serve_until_stopped(runner_deployments(specs), say=console.print)


app.command("tune")(tune_command)
app.command("report")(report_command)


@app.command("models")
@guarded
def models_command(
    task: Annotated[str | None, typer.Option(help="Only this task's registered model.")] = None,
) -> None:
    """List registered seqops model versions, their aliases and test metrics."""
    from flows.tables import registry_table
    from flows.tracking import configure_tracking

    configure_tracking()
    table, missing = registry_table(task)
    for name in missing:
        console.print(f"no registered model named {name}")
    console.print(table)


def main() -> None:
    """The ``seqops`` entry point: ``--debug`` may stand anywhere among the arguments."""
    if "--debug" in sys.argv[1:]:
        sys.argv.remove("--debug")
        os.environ[DEBUG_VARIABLE] = "1"
    install_log_hygiene(tracebacks=debugging())
    app()


if __name__ == "__main__":
    main()
