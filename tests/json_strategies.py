"""Hypothesis strategies for what an input row may hold, weighted towards the values that break code.

Text includes lone surrogates (category Cs), integers go beyond 64 bits (and beyond float64),
floats include NaN, the infinities and the edges of float32. ``step_sequences`` builds nearly
well-formed sequences of time steps, so the codecs' valid path is reached as well as every reason.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

FLOAT32_MAX = float(np.finfo(np.float32).max)
EDGE_NUMBERS = [FLOAT32_MAX, -FLOAT32_MAX, 3.5e38, -3.5e38, 2.4e38, 1e308, 1e-45, 5e-324, -0.0, 10**400]

# Surrogates are planted on purpose: drawn among all code points they would almost never appear.
texts = st.text(max_size=12) | st.tuples(
    st.text(max_size=6), st.characters(categories=["Cs"]), st.text(max_size=6)
).map("".join)
integers = (
    st.integers() | st.integers(min_value=2**63 - 2, max_value=2**64 + 2) | st.integers(-(2**90), 2**90)
)
floats = st.floats() | st.sampled_from(EDGE_NUMBERS)
scalars = st.none() | st.booleans() | integers | floats | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=16,
)
json_objects = st.dictionaries(texts, json_values, max_size=5)


def _plant(steps: list[list[Any]], step: int, position: int, value: Any) -> list[list[Any]]:
    """``steps`` with one value replaced by ``value``, or a whole step where ``position`` is past its end."""
    planted = [list(s) for s in steps]
    target = step % len(planted)
    if position < len(planted[target]):
        planted[target][position] = value
    else:
        planted[target] = value
    return planted


def step_sequences(width: int, min_steps: int, max_steps: int) -> st.SearchStrategy[list[Any]]:
    """Sequences of ``width`` ordinary numbers per step, valid or with one odd value planted somewhere."""
    numbers = st.floats(-1e6, 1e6) | st.integers(-(10**6), 10**6)
    valid = st.lists(
        st.lists(numbers, min_size=width, max_size=width), min_size=min_steps, max_size=max_steps
    )
    odd = st.sampled_from(EDGE_NUMBERS) | json_values
    return valid | st.builds(_plant, valid, st.integers(0, max_steps), st.integers(0, width), odd)
