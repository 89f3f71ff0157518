"""Series validation (``tasks.common.steps``): a bad sequence gets a reason naming its first bad step."""

import numpy as np
import pytest

from tasks import InvalidRow
from tasks.common.steps import FLOAT32_MAX, parse_steps

BEYOND = "holds a value beyond float32's range"


@pytest.mark.parametrize(
    ("steps", "width"),
    [([[1.0], [2.0], [10**400]], 1), ([1.0, 2.0, 10**400], 1), ([[1.0, 2.0], [3.0, 4.0], [5.0, 10**400]], 2)],
    ids=["one-channel steps", "bare numbers", "two channels"],
)
def test_an_integer_beyond_float64_is_named_at_its_step(steps, width):
    # Python integers of any size reach the codec through the Python API; NumPy overflows on them.
    with pytest.raises(InvalidRow, match=rf"^step 2 {BEYOND} \(±3\.4e38\), which the model uses$"):
        parse_steps({"history": steps}, "history", width)


def test_a_value_beyond_float32_once_scaled_is_named_with_the_scaling():
    scale = (np.array([0.0]), np.array([1e-3]))
    with pytest.raises(
        InvalidRow, match=rf"^step 1 {BEYOND} \(±3\.4e38\) once scaled with the training statistics,"
    ):
        parse_steps({"history": [[1.0], [3e36]]}, "history", 1, scale=scale)


def test_valid_steps_become_float32_one_row_per_step():
    array = parse_steps({"history": [[1, 2.5], [3, 4]]}, "history", 2, names=["load", "temp"])
    assert array.dtype == np.float32 and array.tolist() == [[1.0, 2.5], [3.0, 4.0]]


def test_values_near_the_training_mean_pass_however_small_its_deviation():
    scale = (np.array([1e36]), np.array([1e-3]))  # scaled with the mean subtracted, they stay small
    assert parse_steps({"history": [[1e36], [1e36]]}, "history", 1, scale=scale).shape == (2, 1)


def test_a_step_of_the_wrong_width_names_the_channels_expected():
    with pytest.raises(InvalidRow, match=r"^step 1 has 1 values, expected 2 \(load, temp\)$"):
        parse_steps({"history": [[1, 2], [3]]}, "history", 2, names=["load", "temp"])


@pytest.mark.parametrize(
    ("steps", "reason"),
    [
        ([[1.0], [float("inf")]], "^step 1 holds a NaN or infinite value$"),
        ([[1.0], [float("nan")]], "^step 1 holds a NaN or infinite value$"),
        ([[1.0], [1e39]], rf"^step 1 {BEYOND} \(±3\.4e38\), which the model uses$"),
        ([[1.0], ["1.5"]], r"^step 1 holds a non-numeric value \(str\)$"),
    ],
    ids=["infinite", "NaN", "finite beyond float32", "text"],
)
def test_each_bad_value_gets_its_own_reason(steps, reason):
    with pytest.raises(InvalidRow, match=reason):
        parse_steps({"history": steps}, "history", 1)


def test_float32s_largest_value_is_still_a_value():
    assert parse_steps({"history": [[FLOAT32_MAX], [-FLOAT32_MAX]]}, "history", 1).tolist() == [
        [FLOAT32_MAX],
        [-FLOAT32_MAX],
    ]


@pytest.mark.parametrize(
    "steps",
    [
        np.array([[1.0, 2.0], [3.0, 4.0]]),
        np.array([np.array([1.0, 2.0]), np.array([3.0, 4.0])], dtype=object),
    ],
    ids=["2-D array", "array of arrays (Parquet)"],
)
def test_steps_read_from_arrays_are_read_like_lists(steps):
    assert parse_steps({"history": steps}, "history", 2).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert parse_steps({"history": tuple(steps.tolist())}, "history", 2).tolist() == [[1.0, 2.0], [3.0, 4.0]]
