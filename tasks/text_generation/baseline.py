"""Text generation's classical baseline: a smoothed n-gram model of the training tokens.

Interpolated absolute discounting (each order's counts, less a discount, plus the discounted mass
spread by the next lower order, down to a uniform distribution over the vocabulary). It is scored
like the networks: each test window's tokens after its first, with context only from inside the
window, by the task's own metrics. The order is chosen on validation; the test split is read once.
"""

from __future__ import annotations

import numpy as np

from tasks.common.base import PreparedData, Task
from tasks.common.hooks import BaselineSkipped

ORDERS = (3, 5, 7)  # longest n-gram (context + token), chosen on validation
DISCOUNT = 0.75
MAX_TRAINING_TOKENS = 20_000_000  # counting beyond this takes minutes and gigabytes: skipped


def stream(windows: np.ndarray) -> np.ndarray:
    """The token stream the windows were cut from (each overlaps the next by one token)."""
    return np.concatenate([windows[0], *(window[1:] for window in windows[1:])]) if len(windows) else windows


class NGramModel:
    """Counts of every n-gram up to ``order`` in a token stream, as sorted codes (base ``vocabulary``)."""

    def __init__(self, tokens: np.ndarray, order: int, vocabulary: int):
        self.order, self.vocabulary = order, vocabulary
        self.grams, self.contexts = [], []
        for length in range(1, order + 1):
            codes = self._codes(tokens, length)
            grams, counts = np.unique(codes, return_counts=True)
            prefixes = grams // vocabulary  # the context of each distinct n-gram
            contexts, first = np.unique(prefixes, return_index=True)
            totals = np.add.reduceat(counts, first)
            self.grams.append((grams, counts))
            self.contexts.append((contexts, totals, np.diff(np.append(first, len(grams)))))

    def _codes(self, tokens: np.ndarray, length: int) -> np.ndarray:
        codes = np.zeros(len(tokens) - length + 1, dtype=np.int64)
        for offset in range(length):
            codes = codes * self.vocabulary + tokens[offset : len(tokens) - length + 1 + offset]
        return codes

    def nats(self, window: np.ndarray) -> float:
        """Negative log-likelihood of the window's tokens after its first, context within the window."""
        positions = np.arange(1, len(window))
        probability = np.full(len(positions), 1.0 / self.vocabulary)
        for length in range(1, self.order + 1):
            usable = positions >= length - 1  # the context must lie inside the window
            codes = np.zeros(len(positions), dtype=np.int64)
            for offset in range(length):
                codes = codes * self.vocabulary + window[np.maximum(positions - length + 1 + offset, 0)]
            grams, counts = self.grams[length - 1]
            contexts, totals, distinct = self.contexts[length - 1]
            gram_count = lookup(grams, counts, codes)
            where = np.searchsorted(contexts, codes // self.vocabulary).clip(max=len(contexts) - 1)
            seen = usable & (contexts[where] == codes // self.vocabulary)
            total, kinds = np.where(seen, totals[where], 1), np.where(seen, distinct[where], 0)
            mixed = np.maximum(gram_count - DISCOUNT, 0) / total + DISCOUNT * kinds / total * probability
            probability = np.where(seen, mixed, probability)
        return float(-np.log(probability).sum())


def lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """``values`` of ``queries`` among sorted ``keys`` (0 where absent)."""
    where = np.searchsorted(keys, queries).clip(max=len(keys) - 1)
    return np.where(keys[where] == queries, values[where], 0)


def ngram_baseline(task: Task, prepared: PreparedData) -> dict[str, float]:
    """Test metrics of the smoothed n-gram model whose order scores best on validation.

    Raises:
        BaselineSkipped: When the training text is too large to count here.
    """
    windows = {
        s: prepared.splits[s].with_format("numpy")["input_ids"] for s in ("train", "validation", "test")
    }
    tokens = stream(np.asarray(windows["train"]))
    if len(tokens) > MAX_TRAINING_TOKENS:
        raise BaselineSkipped(f"{len(tokens):,} training tokens, more than {MAX_TRAINING_TOKENS:,}")
    vocabulary = prepared.codec.network_shape()["vocab_size"]

    def score(model: NGramModel, split: str) -> dict[str, float]:
        rows, references = task.references(prepared.splits[split], prepared.codec)
        items = [prepared.codec.parse(row) for row in rows]
        predictions = [
            {"nats": model.nats(np.asarray(item["ids"])), "characters": item["characters"]} for item in items
        ]
        return task.metrics(predictions, references)

    orders = [order for order in ORDERS if vocabulary**order < 2**62]  # n-gram codes fit in int64
    models = [NGramModel(tokens, order, vocabulary) for order in orders]
    validation = [score(model, "validation")[task.promotion_metric] for model in models]
    return score(models[int(np.argmin(validation))], "test")
