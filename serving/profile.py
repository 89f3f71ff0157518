"""Input profiles: what the rows a model sees look like, summed so chunks and shards merge exactly.

A profile is computed from encoded feeds (``lengths`` plus ``input_ids`` or real-valued ``inputs``),
so training data and served data are measured the same way: sequence lengths in model steps, the
share of unknown tokens, and per-channel means in the model's scaled units (training data is near 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tasks import InvalidRow


@dataclass
class InputProfile:
    """Additive statistics of a set of encoded inputs.

    Attributes:
        lengths: Count of sequences per length (model steps).
        tokens: Token positions seen (token inputs).
        unknown_tokens: Of which the unknown-token id.
        channel_sums: Per-channel sums over valid steps (real-valued inputs).
        steps: Valid steps summed into ``channel_sums``.
    """

    lengths: dict[int, int] = field(default_factory=dict)
    tokens: int = 0
    unknown_tokens: int = 0
    channel_sums: list[float] = field(default_factory=list)
    steps: int = 0

    @classmethod
    def of_feeds(cls, feeds: dict[str, np.ndarray], unknown_id: int | None = None) -> InputProfile:
        """Profile one encoded batch.

        Args:
            feeds: Encoded inputs holding ``lengths`` and ``input_ids`` or ``inputs``.
            unknown_id: The tokenizer's unknown-token id, for token inputs.
        """
        lengths = np.asarray(feeds["lengths"])
        values, counts = np.unique(lengths, return_counts=True)
        profile = cls(lengths={int(v): int(c) for v, c in zip(values, counts, strict=True)})
        valid = np.arange(_steps(feeds))[None, :] < lengths[:, None]
        if "input_ids" in feeds:
            profile.tokens = int(valid.sum())
            if unknown_id is not None:
                profile.unknown_tokens = int(((feeds["input_ids"] == unknown_id) & valid).sum())
        elif "inputs" in feeds:
            inputs = np.asarray(feeds["inputs"], dtype=np.float64)
            profile.channel_sums = (inputs * valid[:, :, None]).sum(axis=(0, 1)).tolist()
            profile.steps = int(valid.sum())
        return profile

    def merge(self, other: InputProfile) -> InputProfile:
        """The profile of both sets of inputs together."""
        lengths = dict(self.lengths)
        for length, count in other.lengths.items():
            lengths[length] = lengths.get(length, 0) + count
        sums = self.channel_sums or [0.0] * len(other.channel_sums)
        return InputProfile(
            lengths=lengths,
            tokens=self.tokens + other.tokens,
            unknown_tokens=self.unknown_tokens + other.unknown_tokens,
            channel_sums=[a + b for a, b in zip(sums, other.channel_sums or [0.0] * len(sums), strict=True)],
            steps=self.steps + other.steps,
        )

    def summary(self) -> dict[str, float]:
        """Flat, human-sized statistics: count, length mean/p50/p95/max, unknown rate, channel means."""
        count = sum(self.lengths.values())
        if not count:
            return {"count": 0}
        ordered = sorted(self.lengths.items())
        summary: dict[str, float] = {
            "count": count,
            "length_mean": sum(length * n for length, n in ordered) / count,
            "length_p50": _quantile(ordered, count, 0.5),
            "length_p95": _quantile(ordered, count, 0.95),
            "length_max": ordered[-1][0],
        }
        if self.tokens:
            summary["unknown_rate"] = self.unknown_tokens / self.tokens
        if self.steps:
            summary.update({f"mean_channel_{i}": s / self.steps for i, s in enumerate(self.channel_sums)})
        return summary

    def to_json(self) -> dict[str, Any]:
        """JSON-able form (length keys become strings)."""
        return {**self.__dict__, "lengths": {str(k): v for k, v in self.lengths.items()}}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> InputProfile:
        """Inverse of ``to_json``."""
        return cls(**{**data, "lengths": {int(k): v for k, v in data["lengths"].items()}})


def _steps(feeds: dict[str, np.ndarray]) -> int:
    array = feeds.get("input_ids", feeds.get("inputs"))
    return int(array.shape[1]) if array is not None else int(np.max(feeds["lengths"], initial=0))


def _quantile(ordered: list[tuple[int, int]], count: int, q: float) -> float:
    seen = 0
    for length, n in ordered:
        seen += n
        if seen >= q * count:
            return float(length)
    return float(ordered[-1][0])


def profile_rows(codec: Any, rows: list[dict[str, Any]], batch_size: int = 512) -> InputProfile:
    """Profile raw rows as a codec encodes them (rows it rejects are left out).

    Args:
        codec: A ``tasks.Codec``.
        rows: Raw input rows, e.g. the training split as ``Task.references`` gives it.
        batch_size: Rows encoded at a time.
    """
    items = []
    for row in rows:
        try:
            items.append(codec.parse(row))
        except InvalidRow:
            continue
    profile = InputProfile()
    for start in range(0, len(items), batch_size):
        profile = profile.merge(
            InputProfile.of_feeds(codec.encode(items[start : start + batch_size]), codec.unknown_id)
        )
    return profile


def compare_profiles(served: dict[str, float], training: dict[str, float] | None) -> list[dict[str, Any]]:
    """Rows of ``statistic, served, training, shift`` (shift relative for lengths, absolute otherwise)."""
    rows = []
    for name, value in served.items():
        if name == "count":
            continue
        reference = (training or {}).get(name)
        shift = None
        if reference is not None:
            shift = (
                (value - reference) / reference
                if name.startswith("length") and reference
                else value - reference
            )
        rows.append({"statistic": name, "served": value, "training": reference, "shift": shift})
    return rows
