"""One live line per training on the terminal while ``seqops pipeline`` runs, drawn with rich.

The lines come from the ``ProgressBoard`` the trainings update after every batch, in this process or in
the processes it starts (through a shared folder, ``flows.progress``). Log lines (Prefect's
console handler among them) are printed above the live lines, not through them. Where stderr is not a
terminal (CI, a log file) nothing is drawn: the per-epoch log lines say the same.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from flows.progress import BOARD, SHARED_FOLDER_VARIABLE, ProgressBoard, Standing, duration


def standing_line(standing: Standing) -> Text:
    """A training's live line: what trains, epoch, batch, validation score, time so far and left.

    Example: ``my_task/gru  epoch 2/4  batch 113/227  val_loss 3.2140 (best 3.2140)  1 min 52 s,
    ≤ 3 min 40 s left``.
    """
    line = Text(f"{standing.label}", style="bold")
    line.append(f"  epoch {standing.epoch}/{standing.max_epochs}")
    if standing.batches:
        line.append(f"  batch {standing.batch}/{standing.batches}")
    if standing.score is not None and standing.best is not None:
        line.append(f"  {standing.monitor} {standing.score:.4f} (best {standing.best:.4f})")
    line.append(f"  {duration(standing.elapsed)}", style="dim")
    if standing.left is not None:
        line.append(f", ≤ {duration(standing.left)} left", style="dim")
    return line


@contextmanager
def live_progress(board: ProgressBoard = BOARD, console: Console | None = None) -> Iterator[None]:
    """Draw the board's lines below the log while the body runs (only on a terminal)."""
    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    handlers = [h for h in logging_handlers() if isinstance(getattr(h, "console", None), Console)]
    with (
        tempfile.TemporaryDirectory(prefix="seqops-progress-") as shared,
        Live(
            get_renderable=lambda: Group(*map(standing_line, board.standings())),
            console=console,
            refresh_per_second=2,
            transient=True,
        ),
    ):
        saved = [h.console for h in handlers]
        for handler in handlers:  # rich consoles print above the live lines only through the live one
            handler.console = console
        os.environ[SHARED_FOLDER_VARIABLE] = shared  # inherited by the processes that train cells
        try:
            yield
        finally:
            os.environ.pop(SHARED_FOLDER_VARIABLE, None)
            for handler, own in zip(handlers, saved, strict=True):
                handler.console = own


def logging_handlers() -> Iterator[logging.Handler]:
    """Every handler of every configured logger (Prefect's console handlers hang off several)."""
    loggers = [logging.getLogger(), *map(logging.getLogger, logging.root.manager.loggerDict)]
    seen: set[int] = set()
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if id(handler) not in seen:
                seen.add(id(handler))
                yield handler
