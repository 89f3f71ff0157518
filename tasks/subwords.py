"""Byte-pair-encoding tokenizers that detokenise exactly: words keep their spaces as a ``▁`` marker."""

from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

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
