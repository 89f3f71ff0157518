"""A training's progress in words: every epoch, and within an epoch longer than the interval."""

from itertools import count

from flows.live import live_progress, standing_line
from flows.progress import ProgressBoard, Standing, TrainingProgress, duration
from models.config import ModelConfig, TrainConfig
from models.train import train


def test_durations_read_as_a_person_would_say_them():
    assert [duration(s) for s in (4.4, 65, 3725)] == ["4 s", "1 min 05 s", "1 h 02 min"]


def test_each_epoch_reports_its_validation_score_the_best_and_a_bound_on_the_time_left(
    sentiment_prepared, tmp_path
):
    lines = []
    ticks = count(step=10.0)  # a clock that moves 10 s at every look
    progress = TrainingProgress("sentiment/gru", lines.append, interval=25.0, clock=lambda: next(ticks))
    config = TrainConfig(max_epochs=3, patience=3, batch_size=32, limit_train_batches=4)
    model = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0)
    train("classifier", sentiment_prepared, model, config, tmp_path, callbacks=[progress])
    epochs = [line for line in lines if " done" in line]
    assert [line.split(",")[0] for line in epochs] == [f"sentiment/gru: epoch {e}/3 done" for e in (1, 2, 3)]
    assert all("val_macro_f1 " in line and "(best " in line for line in epochs)
    assert "left" in epochs[0] and "left" not in epochs[-1]  # nothing is left after the last epoch
    within = [line for line in lines if ", batch " in line]
    assert within and all("/4, " in line for line in within)  # 4 batches per epoch, 10 s each > 25 s apart


class RecordingBoard(ProgressBoard):
    """A board that also keeps every standing it was given."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def update(self, label, **changes):
        super().update(label, **changes)
        self.seen.extend(self.standings())


def test_the_live_line_follows_every_batch_and_leaves_when_training_ends(sentiment_prepared, tmp_path):
    board = RecordingBoard()
    progress = TrainingProgress("sentiment/gru", lambda line: None, board=board)
    config = TrainConfig(max_epochs=2, patience=2, batch_size=32, limit_train_batches=3)
    model = ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0)
    train("classifier", sentiment_prepared, model, config, tmp_path, callbacks=[progress])
    steps = {(s.epoch, s.batch) for s in board.seen}
    assert {(1, 1), (1, 2), (1, 3), (2, 1), (2, 3)} <= steps
    last = board.seen[-1]
    assert (last.monitor, last.max_epochs, last.batches) == ("val_macro_f1", 2, 3)
    assert last.best is not None and last.left == 0
    assert board.standings() == []  # off the board once training ended


def test_a_live_line_says_where_training_stands():
    standing = Standing(
        "translation/gru",
        epoch=2,
        max_epochs=4,
        batch=113,
        batches=227,
        monitor="val_loss",
        score=3.3,
        best=3.214,
        elapsed=112,
        left=220,
    )
    assert standing_line(standing).plain == (
        "translation/gru  epoch 2/4  batch 113/227  val_loss 3.3000 (best 3.2140)"
        "  1 min 52 s, ≤ 3 min 40 s left"
    )
    assert standing_line(Standing("forecasting/rnn")).plain == "forecasting/rnn  epoch 1/1  0 s"


def test_nothing_is_drawn_where_stderr_is_not_a_terminal():
    from io import StringIO

    from rich.console import Console

    board, output = ProgressBoard(), StringIO()
    board.update("sentiment/rnn", epoch=1, max_epochs=3)
    with live_progress(board, Console(file=output)):
        pass
    assert output.getvalue() == ""


def test_trainings_in_other_processes_get_live_lines_through_the_shared_folder(tmp_path, monkeypatch):
    import subprocess
    import sys

    from rich.console import Console

    in_worker = (
        "from flows.progress import BOARD\n"
        "BOARD.update('sentiment/gru', epoch=2, max_epochs=15, batch=40, batches=2105)\n"
        "BOARD.update('sentiment/rnn', epoch=1, max_epochs=15)\n"
        "BOARD.finish('sentiment/rnn')\n"
    )
    drawn = Console(file=open(tmp_path / "drawn", "w"), force_terminal=True)  # noqa: SIM115
    board = ProgressBoard()
    board.update("sentiment/lstm", epoch=3, max_epochs=15)
    with live_progress(board, drawn):
        subprocess.run([sys.executable, "-c", in_worker], check=True)  # inherits SEQOPS_PROGRESS_DIR
        lines = [standing_line(s).plain for s in board.standings()]
    assert lines == ["sentiment/lstm  epoch 3/15  0 s", "sentiment/gru  epoch 2/15  batch 40/2105  0 s"]
    assert [s.label for s in board.standings()] == ["sentiment/lstm"]  # the folder went with the display
