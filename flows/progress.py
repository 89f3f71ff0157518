"""A training's progress in words, so that no training is silent: after every epoch, and within long ones."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytorch_lightning as pl


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
    """

    def __init__(
        self,
        label: str,
        report: Callable[[str], None],
        interval: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.label, self.report, self.interval, self.clock = label, report, interval, clock
        self.started = self.last = 0.0
        self.first_epoch = 0  # a resumed training starts further on
        self.best: float | None = None

    def on_train_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        """Start the clocks."""
        self.started = self.last = self.clock()
        self.first_epoch = trainer.current_epoch

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
        self.report(f"{self.label}: epoch {done}/{most} done{scored}, {duration(elapsed)} so far{eta}")
