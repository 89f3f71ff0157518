"""A training's progress in words: every epoch, and within an epoch longer than the interval."""

from itertools import count

from flows.progress import TrainingProgress, duration
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
