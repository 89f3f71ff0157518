"""Test data helpers shared by the suite's fixtures and scripts: synthetic SST-style sentences, and the
rule for the real data beside the checkout. A module of its own, not ``conftest``: the browser tests'
folder has a ``conftest`` too, so ``from conftest import ...`` would find either."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

POSITIVE = ["great", "wonderful", "moving", "funny", "brilliant", "charming"]
NEGATIVE = ["dull", "boring", "awful", "tedious", "clumsy", "bland"]
FILLER = ["the", "film", "is", "a", "story", "with", "plot", "and", "acting", "quite", "really", "."]


def synthetic_sentence(rng: random.Random, label: int) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(2, 9))]
    for _ in range(rng.randint(1, 2)):
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label else NEGATIVE))
    return " ".join(words)


def write_sst(path: Path, rows: int, seed: int) -> Path:
    rng = random.Random(seed)
    lines = []
    for _ in range(rows):
        label = rng.randint(0, 1)
        lines.append(f"{label} {synthetic_sentence(rng, label)}")
    path.write_text("\n".join(lines) + "\n")
    return path


REQUIRE_SHARED_DATA = "SEQOPS_REQUIRE_SHARED_DATA"  # .ci/run sets it: in CI, missing data is a failure


def require_shared_data(folder: Path, environ: dict[str, str]) -> Path:
    """``folder`` if it holds the real data; else a skip, or in CI (``REQUIRE_SHARED_DATA``) a failure."""
    if not (folder / "sst2").is_dir():
        if environ.get(REQUIRE_SHARED_DATA):
            pytest.fail(f"real data not found at {folder}, and {REQUIRE_SHARED_DATA} says it must be there")
        pytest.skip(f"real data not found at {folder}")
    return folder
