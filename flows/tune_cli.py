"""``seqops tune``: the command that starts (or resumes) a study and prints its trials."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from flows.console import (
    CellOption,
    DataDirOption,
    ProfileOption,
    WorkDirOption,
    api_for_workers,
    console,
    embedded_defaults,
    guarded,
)


@guarded
def tune_command(
    task: Annotated[str, typer.Option("--task", "-t", help="The task to tune.")],
    trials: Annotated[
        int,
        typer.Option(
            min=1, help="Trials the study should hold in all (an earlier run's finished ones count)."
        ),
    ] = 20,
    workers: Annotated[
        int, typer.Option(min=1, help="Trials at once: Dask worker processes on this machine.")
    ] = 1,
    cell: CellOption = None,
    timeout: Annotated[
        float | None, typer.Option(min=1, help="Seconds after which no further trial starts.")
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default: <task>-<profile>); an existing study resumes.")
    ] = None,
    profile: ProfileOption = "default",
    storage: Annotated[
        str | None,
        typer.Option(
            help="Database URL of the studies (default: SEQOPS_STUDY_STORAGE or MLflow's database)."
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(help="Dask scheduler address (tcp://host:8786): run the trials on that cluster."),
    ] = None,
    objective: Annotated[
        str | None,
        typer.Option(help="METRIC:max|min to optimise (default: the network's monitor), e.g. val_loss:min."),
    ] = None,
    data_dir: DataDirOption = None,
    work_dir: WorkDirOption = ".seqops",
) -> None:
    """Search a task's settings with Optuna on the validation split; write the best as a profile."""
    from flows.config import resolve_run
    from flows.studies import storage_url
    from flows.tune import parse_objective, task_space
    from serving.report import tracking_uri
    from tasks import get_task

    settings, _ = resolve_run(profile, cell, [task], data_dir, work_dir)  # fail fast, before Prefect starts
    task_space(get_task(task), settings.tasks[task], list(settings.cells))
    if objective is not None:
        parse_objective(objective)
    storage_url(tracking_uri(), storage)
    embedded_defaults(work_dir)
    from prefect_dask import DaskTaskRunner

    from flows.tune import default_threads, tune

    if scheduler:
        runner, threads = DaskTaskRunner(address=scheduler), None
    else:
        cluster = {
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
        runner, threads = DaskTaskRunner(cluster_kwargs=cluster), default_threads(workers)
    with api_for_workers():
        result = tune.with_options(task_runner=runner)(
            task_name=task,
            trials=trials,
            cells=cell,
            profile=profile,
            study=study,
            timeout=timeout,
            storage=storage,
            threads_per_trial=threads,
            objective=objective,
            data_dir=data_dir,
            work_dir=work_dir,
        )
    console.print(trials_table(result))
    if "best" in result:
        best = result["best"]
        console.print(f"best: trial {best['trial']}, validation {result['monitor']} {best['value']:.4f}")
        console.print(f"its settings as a profile: {result['profile']}")
        console.print(f"train and ship it: seqops pipeline --task {task} --profile {result['profile']}")
    else:
        console.print(f"study {result['study']}: no trial completed yet")


def trials_table(result: dict[str, Any]) -> Table:
    """The trials this run ran, best validation score first; those the timeout kept from starting counted."""
    sign = -1 if result["direction"] == "maximize" else 1
    ran = [r for r in result["trials"] if not r["state"].startswith("not started")]
    rows = sorted(ran, key=lambda r: (r.get("value") is None, sign * (r.get("value") or 0)))
    skipped = len(result["trials"]) - len(ran)
    keys = sorted(
        {k for r in rows for k in r} - {"trial", "state", "value", "epochs", "seconds", "error", "pruned_at"}
    )
    table = Table(
        "trial",
        "state",
        f"val {result['monitor']}",
        "epochs",
        "s",
        *keys,
        title=f"study {result['study']}",
        caption=f"{skipped} more not started: --timeout reached" if skipped else None,
    )
    for row in rows:
        value = row.get("value")
        table.add_row(
            str(row.get("trial", "")),
            row["state"] + (f": {row['error']}" if "error" in row else ""),
            "" if value is None else f"{value:.4f}",
            str(row.get("epochs", "")),
            str(row.get("seconds", "")),
            *(_setting(row.get(k, "")) for k in keys),
        )
    return table


def _setting(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
