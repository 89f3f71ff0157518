"""The training benchmark compares like with like: both sides time the same batches."""

from flows.config import TaskSettings
from models.config import ModelConfig, TrainConfig


def test_the_training_benchmark_times_both_sides_on_the_same_batches(sentiment_prepared):
    from benchmarks.training import plain_epoch, seqops_epoch

    settings = TaskSettings(
        model=ModelConfig(cell="gru", embedding_dim=8, hidden_size=8, dropout=0.0),
        train=TrainConfig(batch_size=32, num_threads=1),
    )
    plain = plain_epoch("classifier", sentiment_prepared, settings, 3)
    seqops = seqops_epoch("classifier", sentiment_prepared, settings, 3)
    assert plain[:2] == seqops[:2] and plain[0] == 3 and plain[1] > 3 * 16
    assert plain[2] > 0 and seqops[2] > 0
