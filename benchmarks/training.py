"""Training speed: the seqops training path against a plain PyTorch loop, same network, same batches.

For each task, both sides build the network its profile describes from the same seed and iterate the
same training loader (the family's: same batches, same order) on the same number of torch threads.

- **plain PyTorch**: the loop a user would write: ``zero_grad``, the loss, ``backward``, gradient
  clipping, ``step``; the loss is the family's (``module.loss_on``), the optimiser the profile's.
- **seqops**: ``models.train.build_fit`` as the pipeline builds it (Lightning, checkpoint and early
  stopping callbacks, training metrics, the per-step gradient norms of ``GradientFlow`` and the
  progress board), timed from the first to the last training batch of the epoch.

Validation, checkpoint writing and the two gradient-flow profiles of a fit happen after the epoch's
last batch and are not timed (they cost the same per epoch on any path). Rounds alternate the two
sides; the table gives the median of the rounds' rows per second and the time ratio.

    python -m benchmarks.training --rounds 3 --max-batches 300
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated, Any

import pytorch_lightning as pl
import torch
import typer
from rich.console import Console
from rich.table import Table

from flows.config import data_config, default_data_dir, load_profile
from flows.progress import ProgressBoard, TrainingProgress
from models.family import get_family
from models.gradient_flow import GradientFlow
from models.train import FitSpec, build_fit, quiet_lightning
from tasks import PreparedData, get_task

console = Console(width=None if sys.stdout.isatty() else 160)


def batch_rows(batch: Any) -> int:
    """Examples in a loader batch (a dict of tensors, or a tuple of them)."""
    first = next(iter(batch.values())) if isinstance(batch, dict) else batch[0]
    return len(first)


class EpochClock(pl.Callback):
    """Times a training epoch from its first batch's start to its last batch's end, and counts rows."""

    def __init__(self) -> None:
        self.started = self.seconds = 0.0
        self.rows = self.batches = 0

    def on_train_batch_start(
        self, trainer: pl.Trainer, module: pl.LightningModule, batch: Any, index: int
    ) -> None:
        """Start the clock at the first batch."""
        if index == 0:
            self.started = time.perf_counter()
        self.rows += batch_rows(batch)
        self.batches += 1

    def on_train_batch_end(
        self, trainer: pl.Trainer, module: Any, outputs: Any, batch: Any, index: int
    ) -> None:
        """Read the clock after every batch: the last reading is the epoch's."""
        self.seconds = time.perf_counter() - self.started


def seqops_epoch(family: str, prepared: PreparedData, settings: Any, batches: int) -> tuple[int, int, float]:
    """Batches, rows and seconds of one training epoch through ``build_fit``, with the pipeline's hooks."""
    train_config = settings.train.model_copy(update={"max_epochs": 1, "limit_train_batches": batches})
    clock = EpochClock()
    callbacks = [clock, GradientFlow(report=lambda metrics, epoch: None)]
    callbacks.append(TrainingProgress("benchmark", lambda line: None, board=ProgressBoard()))
    with tempfile.TemporaryDirectory(prefix="seqops-bench-") as folder:
        fit = build_fit(FitSpec(family, prepared, settings.model, train_config, Path(folder)), callbacks)
        fit.run(None)
    return clock.batches, clock.rows, clock.seconds


def plain_epoch(family: str, prepared: PreparedData, settings: Any, batches: int) -> tuple[int, int, float]:
    """Batches, rows and seconds of one training epoch in a plain PyTorch loop over the same batches."""
    chosen, config = get_family(family), settings.train
    torch.set_num_threads(config.num_threads or torch.get_num_threads())
    torch.manual_seed(config.seed)
    shape = prepared.codec.network_shape()
    network = chosen.build_network(shape, settings.model)
    module = chosen.build_module(network, shape, config)
    optimizer = module.configure_optimizers()["optimizer"]
    loader, _ = chosen.loaders(prepared, config)
    network.train()
    rows, started, done = 0, 0.0, 0
    for done, batch in enumerate(loader, start=1):
        if done > batches:
            done -= 1
            break
        if done == 1:  # as on the seqops side: from the first batch in hand
            started = time.perf_counter()
        optimizer.zero_grad()
        loss = module.loss_on(batch)
        loss.backward()
        if config.gradient_clip_norm:
            torch.nn.utils.clip_grad_norm_(network.parameters(), config.gradient_clip_norm)
        optimizer.step()
        rows += batch_rows(batch)
    return done, rows, time.perf_counter() - started


def main(
    task: Annotated[
        list[str] | None, typer.Option(help="Task to time; repeat for several (default: all).")
    ] = None,
    profile: Annotated[str, typer.Option(help="Profile whose networks and batches are timed.")] = "default",
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; each times both sides, alternating.")] = 3,
    max_batches: Annotated[
        int | None, typer.Option(min=1, help="Time the first N batches of the epoch (default: all).")
    ] = None,
    work_dir: Annotated[str, typer.Option(help="Folder of the prepared-data cache.")] = ".seqops",
) -> None:
    """Print rows per second of one training epoch, seqops against a plain PyTorch loop."""
    quiet_lightning()
    settings = load_profile(profile)
    table = Table(title=f"One training epoch, {profile} profile (median of {rounds} alternating rounds)")
    for column in (
        "task",
        "network",
        "batches",
        "threads",
        "plain PyTorch rows/s",
        "seqops rows/s",
        "time ratio",
    ):
        table.add_column(column, justify="left" if column in ("task", "network") else "right")
    for name in task or list(settings.tasks):
        task_settings = settings.tasks[name]
        prepared = get_task(name).prepare(data_config(settings, name, default_data_dir(), Path(work_dir)))
        family = get_task(name).family
        times: dict[str, list[float]] = {"plain": [], "seqops": []}
        counted: set[tuple[int, int]] = set()
        for round_number in range(rounds):
            order = ("plain", "seqops") if round_number % 2 == 0 else ("seqops", "plain")
            for side in order:
                timed = plain_epoch if side == "plain" else seqops_epoch
                batches, rows, seconds = timed(family, prepared, task_settings, max_batches or 10**9)
                times[side].append(seconds)
                counted.add((batches, rows))
        if len(counted) != 1:
            raise RuntimeError(f"{name}: the two sides trained on different batches: {counted}")
        [(batches, rows)] = counted
        plain, seqops = statistics.median(times["plain"]), statistics.median(times["seqops"])
        model = task_settings.model
        table.add_row(
            name,
            f"{model.cell} {model.hidden_size}×{model.num_layers}{' bi' if model.bidirectional else ''}",
            str(batches),
            str(task_settings.train.num_threads or torch.get_num_threads()),
            f"{rows / plain:,.0f}",
            f"{rows / seqops:,.0f}",
            f"{seqops / plain:.2f}×",
        )
        console.print(
            f"{name}: plain {[round(t, 2) for t in times['plain']]} s, seqops "
            f"{[round(t, 2) for t in times['seqops']]} s"
        )
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
