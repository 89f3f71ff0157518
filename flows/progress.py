"""A training's progress, so that no training is silent.

In words through a logger (after every epoch, and every half minute within long ones), and as figures
on a ``ProgressBoard`` that the command line draws as one live line per training (``flows.live``).
Trainings in other processes (``--parallel``) share their figures through a folder named by
``SEQOPS_PROGRESS_DIR``, which the drawing process sets for the processes it starts.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytorch_lightning as pl

SHARED_FOLDER_VARIABLE = "SEQOPS_PROGRESS_DIR"


def duration(seconds: float) -> str:
    """Seconds as ``42 s``, ``3 min 05 s`` or ``1 h 02 min``."""
    seconds = max(int(round(seconds)), 0)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


@dataclass(frozen=True)
class Standing:
    """Where one training stands, for its live line.

    Attributes:
        label: What trains (``<task>/<cell>``).
        epoch: The epoch under way (from 1).
        max_epochs: The most it may run.
        batch: Batches done in this epoch.
        batches: Batches per epoch.
        monitor: The validation metric early stopping watches.
        score: Its last value (``None`` before the first validation).
        best: Its best value so far.
        elapsed: Seconds since training started.
        left: An upper bound on the seconds left (``None`` until an epoch has finished).
    """

    label: str
    epoch: int = 1
    max_epochs: int = 1
    batch: int = 0
    batches: int = 0
    monitor: str = ""
    score: float | None = None
    best: float | None = None
    elapsed: float = 0.0
    left: float | None = None


class ProgressBoard:
    """The trainings under way and where each stands (thread-safe).

    Where ``SEQOPS_PROGRESS_DIR`` names a folder, every update is also written there (a JSON file per
    training, at most every ``interval`` seconds within an epoch), and ``standings`` includes those of
    other processes.

    Args:
        interval: Seconds between two writes of a training's batch count to the shared folder.
    """

    def __init__(self, interval: float = 0.5) -> None:
        self._standings: dict[str, Standing] = {}
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()
        self.interval = interval

    def update(self, label: str, **changes: object) -> None:
        """Record what changed for ``label`` (added on its first update)."""
        with self._lock:
            standing = replace(self._standings.get(label) or Standing(label), **changes)
            self._standings[label] = standing
            now = time.monotonic()
            batch_only = not set(changes) - {"batch", "elapsed"}
            if batch_only and now - self._written.get(label, 0) < self.interval:
                return  # within an epoch, no look at the folder on every batch
            self._written[label] = now
            folder = shared_folder()
            if folder:
                written = standing_file(folder, label)
                written.with_suffix(".tmp").write_text(json.dumps(asdict(standing)))
                written.with_suffix(".tmp").replace(written)  # readers never see half a file

    def finish(self, label: str) -> None:
        """Take a training off the board."""
        with self._lock:
            self._standings.pop(label, None)
            folder = shared_folder()
            if folder:
                standing_file(folder, label).unlink(missing_ok=True)

    def standings(self) -> list[Standing]:
        """The trainings under way: this process's in the order they started, then the shared ones by name."""
        with self._lock:
            found = dict(self._standings)
        folder = shared_folder()
        for written in sorted(folder.glob("*.json")) if folder else []:
            try:
                standing = Standing(**json.loads(written.read_text()))
            except (OSError, ValueError, TypeError):  # finished and removed meanwhile, or not a standing
                continue
            found.setdefault(standing.label, standing)
        return list(found.values())


def shared_folder() -> Path | None:
    """The folder where trainings of several processes share their standings, if one is set and exists."""
    named = os.environ.get(SHARED_FOLDER_VARIABLE)
    return Path(named) if named and Path(named).is_dir() else None


def standing_file(folder: Path, label: str) -> Path:
    """Where a training's standing is shared (``task__cell.json``)."""
    return folder / f"{label.replace('/', '__')}.json"


BOARD = ProgressBoard()  # what ``seqops pipeline`` draws while its cells train


class TrainingProgress(pl.Callback):
    """Reports a training's progress through ``report`` (a Prefect run logger's ``info``, say).

    After every epoch: the epoch of the most, the validation score early stopping watches and the best so
    far, the time taken and an upper bound on the time left (early stopping may end sooner). Within an
    epoch longer than ``interval`` seconds, the batch reached, every ``interval`` seconds.

    Args:
        label: What trains (``<task>/<cell>``).
        report: Called with each line.
        interval: Seconds between lines within an epoch.
        clock: The time source (seconds).
        board: Where the figures go after every batch (default: this process's ``BOARD``).
    """

    def __init__(
        self,
        label: str,
        report: Callable[[str], None],
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
        board: ProgressBoard = BOARD,
    ):
        self.label, self.report, self.interval, self.clock, self.board = label, report, interval, clock, board
        self.started = self.last = 0.0
        self.first_epoch = 0  # a resumed training starts further on
        self.best: float | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Start the clocks."""
        self.started = self.last = self.clock()
        self.first_epoch = trainer.current_epoch
        monitor = getattr(module, "monitor", "")
        self.board.update(
            self.label, max_epochs=trainer.max_epochs, monitor=monitor, epoch=trainer.current_epoch + 1
        )

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Put the new epoch on the board."""
        self.board.update(
            self.label, epoch=trainer.current_epoch + 1, batch=0, batches=int(trainer.num_training_batches)
        )

    def on_train_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Take the training off the board."""
        self.board.finish(self.label)

    def on_exception(self, trainer: pl.Trainer, module: pl.LightningModule, exception: BaseException) -> None:
        """A failed training leaves the board too."""
        self.board.finish(self.label)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        module: pl.LightningModule,
        outputs: object,
        batch: object,
        batch_index: int,
    ) -> None:
        """Within a long epoch, say which batch it has reached."""
        now = self.clock()
        self.board.update(self.label, batch=batch_index + 1, elapsed=now - self.started)
        if now - self.last < self.interval:
            return
        self.last = now
        self.report(
            f"{self.label}: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, batch "
            f"{batch_index + 1}/{trainer.num_training_batches}, {duration(now - self.started)} so far"
        )

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Say what the epoch scored on validation, and how long the rest may take."""
        now = self.clock()
        self.last = now
        done, most = trainer.current_epoch + 1, trainer.max_epochs
        monitor, mode = getattr(module, "monitor", None), getattr(module, "monitor_mode", "min")
        score = trainer.callback_metrics.get(monitor) if monitor else None
        scored = ""
        if score is not None:
            value = float(score)
            better = self.best is None or (value > self.best if mode == "max" else value < self.best)
            self.best = value if better else self.best
            scored = f", {monitor} {value:.4f} (best {self.best:.4f})"
        elapsed = now - self.started
        left = elapsed / max(done - self.first_epoch, 1) * (most - done)
        eta = f", at most {duration(left)} left" if done < most else ""
        self.board.update(
            self.label,
            score=None if score is None else float(score),
            best=self.best,
            elapsed=elapsed,
            left=left,
        )
        self.report(f"{self.label}: epoch {done}/{most} done{scored}, {duration(elapsed)} so far{eta}")
