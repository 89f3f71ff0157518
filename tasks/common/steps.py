"""Validation of input rows holding a sequence of time steps, each a vector of channel values.

Shared by the tasks whose inputs are real-valued sequences (forecast histories, motion capture),
so a bad row gets the same precise reason whichever task serves it. Values are checked as the
graph will compute with them: float32 numbers, finite before and after scaling. Booleans are not
numbers here, and nothing is handed to NumPy before its structure has been checked in Python, so
deep nesting or huge integers become a reason, never an exception.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tasks.common.errors import InvalidRow

FLOAT32_MAX = float(np.finfo(np.float32).max)
NUMBER_TYPES = (int, float, np.integer, np.floating)
NOT_NUMBERS = (bool, np.bool_)


def parse_steps(
    row: dict[str, Any],
    field: str,
    width: int,
    names: list[str] | None = None,
    scale: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Read ``row[field]`` as a ``(steps, channels)`` float32 array, or say exactly what is wrong.

    Args:
        row: The raw input row.
        field: Name of the field holding the sequence: a list of time steps, each a list of one value
            per channel (a bare number is accepted for single-channel input).
        width: Values expected per step (channels).
        names: Channel names for error messages, in the order the values are expected.
        scale: Per-channel mean and standard deviation the codec will z-score with; the scaled values
            must stay within float32 too.

    Returns:
        The sequence as float32, one row per time step.

    Raises:
        InvalidRow: If the field is missing, not a non-empty list, ragged, of the wrong width, nested
            too deeply, or holds a boolean, a non-numeric, NaN or infinite value, or a number float32
            cannot hold.
    """
    steps = row.get(field)
    if isinstance(steps, np.ndarray | tuple):  # DataFrames read from Parquet hold arrays, not lists
        steps = steps.tolist() if isinstance(steps, np.ndarray) else list(steps)
    if not isinstance(steps, list) or not steps:
        raise InvalidRow(f"'{field}' must be a non-empty list of time steps")
    expected = f"{width} ({', '.join(names)})" if names else str(width)
    problem = _first_malformed_step(steps, width, expected)
    if problem:
        raise InvalidRow(problem)
    try:
        array = np.array(steps, dtype=np.float64).reshape(len(steps), width)
    except OverflowError:  # an integer beyond float64
        raise InvalidRow(_out_of_range(steps)) from None
    _check_range(array, "")
    if scale is not None:
        _check_range((array - scale[0]) / scale[1], " once scaled with the training statistics")
    return array.astype(np.float32)


def _first_malformed_step(steps: list[Any], width: int, expected: str) -> str | None:
    """Why the first malformed step is wrong, or ``None`` when every step is a flat list of numbers."""
    for index, step in enumerate(steps):
        values = step if isinstance(step, list | tuple) else (step,)
        if len(values) != width:
            return f"step {index} has {len(values)} values, expected {expected}"
        for value in values:
            if isinstance(value, NUMBER_TYPES) and not isinstance(value, NOT_NUMBERS):
                continue
            if isinstance(value, NOT_NUMBERS):
                return f"step {index} holds a boolean ({value}) where a number is expected"
            if isinstance(value, list | tuple | dict):
                return f"step {index} is nested deeper than one list of channel values"
            return f"step {index} holds a non-numeric value ({type(value).__name__})"
    return None


def _beyond_float32(index: int, context: str = "") -> str:
    return f"step {index} holds a value beyond float32's range (±3.4e38){context}, which the model uses"


def _out_of_range(steps: list[Any]) -> str:
    for index, step in enumerate(steps):
        for value in step if isinstance(step, list | tuple) else (step,):
            try:
                float(value)
            except OverflowError:
                return _beyond_float32(index)
    return _beyond_float32(0)


def _check_range(array: np.ndarray, context: str) -> None:
    with np.errstate(over="ignore", invalid="ignore"):
        bad = ~(np.abs(array) <= FLOAT32_MAX)  # NaN compares False, so it is caught too
    if not bad.any():
        return
    index = int(np.flatnonzero(bad.any(axis=1))[0])
    value = float(array[index][bad[index]][0])
    if np.isnan(value) or (np.isinf(value) and not context):
        raise InvalidRow(f"step {index} holds a NaN or infinite value")
    raise InvalidRow(_beyond_float32(index, context))
