"""Encoded dataset splits as PyTorch batches: padded ids, lengths and targets."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset


class TokenSequences(Dataset):
    """Token-id sequences and integer targets held in memory."""

    def __init__(self, sequences: Sequence[Sequence[int]], targets: Sequence[int]):
        self.sequences = [list(s) if len(s) else [0] for s in sequences]
        self.targets = list(targets)

    def __len__(self) -> int:
        return len(self.sequences)

    def __getitem__(self, index: int) -> tuple[list[int], int]:
        return self.sequences[index], self.targets[index]


def pad_batch(batch: list[tuple[list[int], int]]) -> dict[str, torch.Tensor]:
    """Right-pad a batch with id 0; return ``input_ids``, ``lengths`` and ``targets``."""
    lengths = torch.tensor([len(ids) for ids, _ in batch], dtype=torch.long)
    input_ids = torch.zeros(len(batch), int(lengths.max()), dtype=torch.long)
    for row, (ids, _) in enumerate(batch):
        input_ids[row, : len(ids)] = torch.tensor(ids)
    targets = torch.tensor([target for _, target in batch], dtype=torch.long)
    return {"input_ids": input_ids, "lengths": lengths, "targets": targets}


class BucketBatchSampler(Sampler[list[int]]):
    """Random batches of similar lengths, so little time goes into padded steps.

    Shuffles, sorts each window of ``batch_size * window`` examples by length, cuts batches,
    and shuffles the batches; a new order every epoch.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, window: int = 50):
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


def token_loader(
    sequences: Sequence[Sequence[int]], targets: Sequence[int], batch_size: int, shuffle: bool, seed: int = 0
) -> DataLoader:
    """DataLoader of padded token batches; training batches are length-bucketed and shuffled.

    Args:
        sequences: Token ids per example.
        targets: Class id per example.
        batch_size: Examples per batch.
        shuffle: Bucket and shuffle (training) or keep the order (evaluation).
        seed: Seed of the batch order.

    Returns:
        A loader yielding dicts of ``input_ids``, ``lengths`` and ``targets``.
    """
    dataset = TokenSequences(sequences, targets)
    if shuffle:
        sampler = BucketBatchSampler([len(s) for s in dataset.sequences], batch_size, seed)
        return DataLoader(dataset, batch_sampler=sampler, collate_fn=pad_batch)
    return DataLoader(dataset, batch_size=batch_size, collate_fn=pad_batch)


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
