"""Subword tokenizers and token-id batches.

BPE tokenizers here detokenise exactly: words keep their leading space as a ``▁`` marker.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from tasks.common.errors import BundleError

PAD, UNK, BOS, EOS = "[PAD]", "[UNK]", "[BOS]", "[EOS]"
BOS_ID, EOS_ID = 2, 3  # special tokens take the first ids, in the order above


def train_bpe(texts: list[str], vocab_size: int, min_frequency: int, lowercase: bool) -> Tokenizer:
    """Train a BPE tokenizer on ``texts`` (training data only).

    Args:
        texts: Sentences to learn merges from.
        vocab_size: Largest vocabulary, special tokens included.
        min_frequency: Merges seen fewer times are not learned.
        lowercase: Lower-case before tokenising.

    Returns:
        A tokenizer whose ``decode`` restores the (normalised) sentence, spaces included.
    """
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    steps = [normalizers.NFKC(), *([normalizers.Lowercase()] if lowercase else [])]
    tokenizer.normalizer = normalizers.Sequence(steps)
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD, UNK, BOS, EOS],
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def pad_ids(sequences: list[list[int]]) -> dict[str, np.ndarray]:
    """Right-pad id sequences with 0 into an int64 matrix, with their lengths."""
    lengths = np.array([max(len(ids), 1) for ids in sequences], dtype=np.int64)
    input_ids = np.zeros((len(sequences), int(lengths.max(initial=1))), dtype=np.int64)
    for row, ids in enumerate(sequences):
        input_ids[row, : len(ids)] = ids
    return {"input_ids": input_ids, "lengths": lengths}


def load_tokenizer(directory: Path, name: str) -> Tokenizer:
    """A tokenizer saved in a model bundle.

    Raises:
        BundleError: Naming the file when it is missing or not a tokenizer.
    """
    path = Path(directory) / name
    if not path.is_file():
        raise BundleError(f"{path} is missing")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as error:  # the Rust library raises a bare Exception
        raise BundleError(f"{path} is not a readable tokenizer ({error})") from None
