"""Encoded dataset splits as PyTorch batches: padded inputs (ids or vectors), lengths and targets."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from models.config import TrainConfig

VALIDATION_BATCH_SIZE = 256  # evaluation holds no gradients: larger batches, fewer steps


class PaddedSequences(Dataset):
    """Variable-length sequences (token ids, or one vector per step) and integer targets held in memory."""

    def __init__(self, sequences: Sequence[np.ndarray], targets: Sequence[int]):
        # An empty sequence becomes one padding step: every sequence needs a length of at least 1.
        self.sequences = [
            torch.tensor(np.asarray(s)) if len(s) else torch.zeros(1, *np.shape(s)[1:], dtype=torch.long)
            for s in sequences
        ]
        # Sequence targets (a target sentence per source) become tensors too; class ids stay ints.
        self.targets = [torch.tensor(np.asarray(t)) if np.ndim(t) else t for t in targets]

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.sequences[index], self.targets[index]


def pad_batch(batch: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """Right-pad a batch with zeros; return ``inputs``, ``lengths`` and ``targets`` (padded if sequences)."""
    lengths = torch.tensor([len(steps) for steps, _ in batch], dtype=torch.long)
    first = batch[0][0]
    inputs = torch.zeros(len(batch), int(lengths.max()), *first.shape[1:], dtype=first.dtype)
    for row, (steps, _) in enumerate(batch):
        inputs[row, : len(steps)] = steps
    if isinstance(batch[0][1], torch.Tensor):
        targets = nn.utils.rnn.pad_sequence([target for _, target in batch], batch_first=True)
    else:
        targets = torch.tensor([target for _, target in batch], dtype=torch.long)
    return {"inputs": inputs, "lengths": lengths, "targets": targets}


def ragged_column(dataset: Any, name: str) -> list[np.ndarray]:
    """A list-of-lists column of a ``datasets.Dataset`` as one numpy array per row, without Python lists.

    Token ids come back as 1-D integer arrays; fixed-width steps as ``(steps, width)`` arrays.
    """
    column = dataset.with_format("arrow")[:].column(name).combine_chunks()
    values = column.flatten()
    width = values.type.list_size if pa.types.is_fixed_size_list(values.type) else None
    flat = (values.flatten() if width else values).to_numpy(zero_copy_only=False)
    if width:
        flat = flat.reshape(-1, width)
    offsets = column.offsets.to_numpy()
    offsets = offsets - offsets[0]
    return [flat[start:end] for start, end in zip(offsets[:-1], offsets[1:], strict=True)]


class BucketBatchSampler(Sampler[list[int]]):
    """Random batches of similar lengths, so little time goes into padded steps.

    Shuffles, sorts each window of ``batch_size * window`` examples by length, cuts batches,
    and shuffles the batches; a new order every epoch. A length may be a tuple (source length, target
    length): ties of the first are then broken by the second, so both sides of a pair pad little.
    """

    def __init__(
        self, lengths: Sequence[int] | Sequence[tuple[int, int]], batch_size: int, seed: int, window: int = 50
    ):
        self.lengths = lengths
        self.batch_size = batch_size
        self.window = batch_size * window
        self.random = random.Random(seed)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.lengths)))
        self.random.shuffle(order)
        batches = []
        for start in range(0, len(order), self.window):
            chunk = sorted(order[start : start + self.window], key=self.lengths.__getitem__)
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        self.random.shuffle(batches)
        return iter(batches)

    def __len__(self) -> int:
        return -(-len(self.lengths) // self.batch_size)


def sequence_loader(
    sequences: Sequence[np.ndarray], targets: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0
) -> DataLoader:
    """DataLoader of padded variable-length batches; training batches are length-bucketed and shuffled.

    Args:
        sequences: Token ids ``(steps,)`` or vectors ``(steps, width)`` per example.
        targets: Class id per example.
        batch_size: Examples per batch.
        shuffle: Bucket and shuffle (training) or keep the order (evaluation).
        seed: Seed of the batch order.

    Returns:
        A loader yielding dicts of ``inputs``, ``lengths`` and ``targets``.
    """
    dataset = PaddedSequences(sequences, targets)
    if shuffle:
        pairs = zip(dataset.sequences, dataset.targets, strict=True)
        lengths = [(len(source), len(target) if np.ndim(target) else 0) for source, target in pairs]
        sampler = BucketBatchSampler(lengths, batch_size, seed)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_batch)
    return DataLoader(dataset, batch_size=batch_size, collate_fn=pad_batch)


def sequence_loaders(
    splits: Any, column: str, targets: Callable[[Any], Sequence[Any]], config: TrainConfig
) -> tuple[DataLoader, DataLoader]:
    """Training (bucketed, shuffled) and validation loaders of the ``train`` and ``validation`` splits.

    Args:
        splits: ``datasets.DatasetDict`` holding both splits.
        column: The list-valued column of inputs (token ids or vectors per step).
        targets: Gives a split's targets (its labels, or its target sequences).
        config: Batch size and seed of the training batches.

    Returns:
        The training and the validation loader.
    """
    train, validation = splits["train"], splits["validation"]
    return (
        sequence_loader(
            ragged_column(train, column), targets(train), config.batch_size, shuffle=True, seed=config.seed
        ),
        sequence_loader(
            ragged_column(validation, column), targets(validation), VALIDATION_BATCH_SIZE, shuffle=False
        ),
    )


def series_loader(
    inputs: np.ndarray, targets: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0
) -> DataLoader:
    """DataLoader of full-length windows: ``inputs`` (batch, lookback, columns), ``lengths`` and ``targets``.

    Args:
        inputs: Scaled histories, shape ``(windows, lookback, columns)``.
        targets: Scaled futures of the target, shape ``(windows, horizon)``.
        batch_size: Windows per batch.
        shuffle: Shuffle every epoch (training) or keep the order (evaluation).
        seed: Seed of the shuffling.

    Returns:
        A loader yielding dicts of ``inputs``, ``lengths`` and ``targets``.
    """
    windows = TensorDataset(
        torch.as_tensor(inputs, dtype=torch.float32), torch.as_tensor(targets, dtype=torch.float32)
    )

    def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        history = torch.stack([b[0] for b in batch])
        return {
            "inputs": history,
            "lengths": torch.full((len(batch),), history.shape[1], dtype=torch.long),
            "targets": torch.stack([b[1] for b in batch]),
        }

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(
        windows, batch_size=batch_size, shuffle=shuffle, collate_fn=collate, generator=generator
    )
