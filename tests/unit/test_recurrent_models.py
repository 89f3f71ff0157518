import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from models.config import ModelConfig, TrainConfig
from models.data import BucketBatchSampler, pad_batch, sequence_loader
from models.families.classifier.module import ClassifierModule
from models.families.classifier.network import SequenceClassifier
from models.recurrent import reverse_within_length

CELLS = ["rnn", "lstm", "gru"]


def test_reverse_within_length_keeps_padding_in_place():
    x = torch.arange(8, dtype=torch.float).view(2, 4, 1)
    reversed_ = reverse_within_length(x, torch.tensor([3, 4]))
    assert reversed_.squeeze(-1).tolist() == [[2, 1, 0, 3], [7, 6, 5, 4]]
    assert torch.equal(reverse_within_length(reversed_, torch.tensor([3, 4])), x)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
def test_padding_does_not_change_the_output(cell, bidirectional, pooling):
    torch.manual_seed(0)
    config = ModelConfig(
        cell=cell,
        embedding_dim=8,
        hidden_size=6,
        num_layers=2,
        bidirectional=bidirectional,
        dropout=0.0,
        pooling=pooling,
    )
    network = SequenceClassifier(config, num_classes=3, vocab_size=20).eval()
    ids = torch.tensor([[5, 6, 7]])
    padded = torch.tensor([[5, 6, 7, 0, 0, 0]])
    with torch.no_grad():
        alone = network(ids, torch.tensor([3]))
        in_batch = network(torch.cat([padded, torch.tensor([[1, 2, 3, 4, 5, 6]])]), torch.tensor([3, 6]))
    torch.testing.assert_close(alone[0], in_batch[0], atol=1e-6, rtol=1e-5)


def test_real_valued_input_uses_a_projection():
    network = SequenceClassifier(ModelConfig(cell="gru", embedding_dim=8, hidden_size=4), 2, input_size=5)
    logits = network(torch.randn(3, 7, 5), torch.tensor([7, 2, 1]))
    assert logits.shape == (3, 2)
    with pytest.raises(ValueError, match="exactly one"):
        SequenceClassifier(ModelConfig(), 2)


def test_rnn_is_the_elman_tanh_cell():
    network = SequenceClassifier(ModelConfig(cell="rnn"), 2, vocab_size=10)
    layer = network.encoder.forward_layers[0]
    assert isinstance(layer, torch.nn.RNN) and layer.nonlinearity == "tanh"


def test_bucket_sampler_covers_every_example_once_with_similar_lengths():
    lengths = [((i * 37) % 50) + 1 for i in range(500)]
    batches = list(BucketBatchSampler(lengths, batch_size=16, seed=0, window=10))
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(500)) and len(batches) == len(BucketBatchSampler(lengths, 16, 0))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 8  # random batches of 16 from 1..50 spread about 45


def test_bucketed_pairs_break_ties_of_source_length_by_target_length():
    sources = [np.arange(1, 6 + i % 2) for i in range(400)]  # two source lengths only
    targets = [np.arange(1, 3 + (i * 7) % 30) for i in range(400)]
    loader = sequence_loader(sources, targets, 16, shuffle=True)
    padded = sum(int((batch["targets"] == 0).sum()) for batch in loader)
    real = sum(len(t) for t in targets)
    assert padded < 0.15 * real  # sorted by source length alone: 0.82 * real


def test_pad_batch_pads_right_with_zero():
    batch = pad_batch([(torch.tensor([4, 5, 6]), 1), (torch.tensor([7]), 0)])
    assert batch["inputs"].tolist() == [[4, 5, 6], [7, 0, 0]]
    assert batch["lengths"].tolist() == [3, 1] and batch["targets"].tolist() == [1, 0]


@pytest.mark.parametrize("cell", CELLS)
def test_each_cell_learns_a_toy_task(cell, tmp_path):
    """Label = whether token 3 occurs anywhere: needs memory across the sequence."""
    generator = torch.Generator().manual_seed(0)
    sequences, labels = [], []
    for _ in range(400):
        length = int(torch.randint(2, 12, (1,), generator=generator))
        ids = torch.randint(4, 20, (length,), generator=generator)
        label = int(torch.rand(1, generator=generator) < 0.5)
        if label:
            ids[int(torch.randint(0, length, (1,), generator=generator))] = 3
        sequences.append(ids.tolist())
        labels.append(label)
    config = TrainConfig(max_epochs=12, learning_rate=0.02, batch_size=32, optimizer="adam", scheduler="none")
    torch.manual_seed(0)
    network = SequenceClassifier(
        ModelConfig(cell=cell, embedding_dim=16, hidden_size=24, dropout=0.0, bidirectional=True),
        2,
        vocab_size=20,
    )
    module = ClassifierModule(network, 2, config)
    # Training ends once the cell has learned the task (no need to finish the epoch budget).
    learned = EarlyStopping("val_accuracy", mode="max", patience=config.max_epochs, stopping_threshold=0.9)
    trainer = pl.Trainer(
        max_epochs=config.max_epochs,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        callbacks=[learned],
    )
    trainer.fit(
        module,
        sequence_loader(sequences[:300], labels[:300], 32, shuffle=True),
        sequence_loader(sequences[300:], labels[300:], 100, shuffle=False),
    )
    assert trainer.callback_metrics["val_accuracy"] > 0.9


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop", "sgd"])
@pytest.mark.parametrize("scheduler", ["cosine", "plateau", "none"])
def test_optimizers_and_schedules_build(optimizer, scheduler):
    module = ClassifierModule(
        SequenceClassifier(ModelConfig(), 2, vocab_size=10),
        2,
        TrainConfig(optimizer=optimizer, scheduler=scheduler),
    )
    configured = module.configure_optimizers()
    assert type(configured["optimizer"]).__name__.lower() == optimizer
    assert ("lr_scheduler" in configured) == (scheduler != "none")
