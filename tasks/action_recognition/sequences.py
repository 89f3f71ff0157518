"""Action recognition's sequences: cleaning, the validation hold-out, label order and the Arrow table."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from tasks.common.base import datasets


def clean(sequences: list[np.ndarray], labels: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Trim trailing all-missing steps (NaN padding of unequal lengths); drop cases still missing values."""
    kept, keep = [], np.zeros(len(sequences), dtype=bool)
    for index, sequence in enumerate(sequences):
        observed = np.flatnonzero(~np.isnan(sequence).all(axis=1))
        trimmed = sequence[: observed[-1] + 1] if len(observed) else sequence[:0]
        if len(trimmed) and np.isfinite(trimmed).all():
            kept.append(trimmed)
            keep[index] = True
    return kept, labels[keep]


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Shuffled train and validation indices, ``fraction`` of every class (at least one) held out."""
    rng = np.random.default_rng(seed)
    train, validation = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        held = max(1, round(fraction * len(members))) if len(members) > 1 else 0
        validation += members[:held].tolist()
        train += members[held:].tolist()
    return rng.permutation(train), rng.permutation(validation)


def label_order(labels: np.ndarray) -> list[str]:
    """Distinct raw labels, numerically sorted when they are all numbers (``2`` before ``10``)."""
    unique = sorted(set(labels.tolist()))
    try:
        return sorted(unique, key=float)
    except ValueError:
        return unique


def sequence_table(sequences: list[np.ndarray], label_ids: np.ndarray) -> datasets.Dataset:
    """Variable-length ``(steps, channels)`` float32 sequences as a nested Arrow column, with labels."""
    channels = sequences[0].shape[1]
    offsets = np.concatenate([[0], np.cumsum([len(s) for s in sequences])]).astype(np.int32)
    steps = pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(sequences).reshape(-1)), channels)
    return datasets.Dataset(
        pa.table(
            {
                "inputs": pa.ListArray.from_arrays(pa.array(offsets), steps),
                "length": pa.array(np.diff(offsets).astype(np.int64)),
                "label": pa.array(label_ids.astype(np.int64)),
            }
        )
    )
