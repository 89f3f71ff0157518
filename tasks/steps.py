"""Validation of input rows holding a sequence of time steps, each a vector of channel values.

Shared by the tasks whose inputs are real-valued sequences (forecast histories, motion capture),
so a bad row gets the same precise reason whichever task serves it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.base import InvalidRow


def parse_steps(row: dict[str, Any], field: str, width: int, names: list[str] | None = None) -> np.ndarray:
    """Read ``row[field]`` as a ``(steps, channels)`` float32 array, or say exactly what is wrong.

    Args:
        row: The raw input row.
        field: Name of the field holding the sequence: a list of time steps, each a list of one value
            per channel (a bare number is accepted for single-channel input).
        width: Values expected per step (channels).
        names: Channel names for error messages, in the order the values are expected.

    Returns:
        The sequence as float32, one row per time step.

    Raises:
        InvalidRow: If the field is missing, not a non-empty list, ragged, of the wrong width, or holds
            a NaN, infinite or non-numeric value.
    """
    steps = row.get(field)
    if isinstance(steps, np.ndarray | tuple):  # DataFrames read from Parquet hold arrays, not lists
        steps = steps.tolist() if isinstance(steps, np.ndarray) else list(steps)
    if not isinstance(steps, list) or not steps:
        raise InvalidRow(f"'{field}' must be a non-empty list of time steps")
    try:
        array = np.asarray(steps)
    except ValueError:  # ragged: NumPy refuses inhomogeneous nesting
        array = None
    if array is not None and array.ndim == 1 and width == 1:
        array = array[:, None]
    if (
        array is not None
        and array.dtype.kind in "iuf"
        and array.ndim == 2
        and array.shape[1] == width
        and np.isfinite(array).all()
    ):
        return array.astype(np.float32)
    raise InvalidRow(_first_bad_step(steps, field, width, names))


def _first_bad_step(steps: list[Any], field: str, width: int, names: list[str] | None) -> str:
    """The reason the first malformed step is wrong (the slow path, only for rejected rows)."""
    expected = f"{width} ({', '.join(names)})" if names else str(width)
    for index, step in enumerate(steps):
        values = list(step) if isinstance(step, list | tuple) else [step]
        if len(values) != width:
            return f"step {index} has {len(values)} values, expected {expected}"
        for value in values:
            if isinstance(value, list):
                return f"step {index} is nested deeper than one list of channel values"
            if isinstance(value, bool) or not isinstance(value, int | float) or not np.isfinite(value):
                return f"step {index} holds a NaN, infinite or non-numeric value"
    return f"'{field}' could not be read as numbers"
