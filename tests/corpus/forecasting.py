"""The forecasting model's malformed rows: ``history`` must hold at least 48 steps of (load, temp)."""

from corpus import BIG_INT, PREDICTED, Case, json_cases, row

LOOKBACK = 48
NOT_A_LIST = "'history' must be a non-empty list of time steps"
NOT_FINITE = "holds a NaN or infinite value"
BEYOND_FLOAT32 = "beyond float32's range"


def history(last: bytes = b"[0.5, -0.5]", steps: int = LOOKBACK, extra: bytes = b"") -> bytes:
    """A row whose history is ``steps`` good steps, the last one given as raw JSON text, then ``extra``."""
    return row("history", b"[" + b"[0.1, 0.2], " * (steps - 1) + last + b"]", extra)


CASES = [
    *json_cases("history", [[0.1, 0.2]] * LOOKBACK, NOT_A_LIST, NOT_A_LIST),
    Case("history_of_ints", history(b"[1, -2]"), PREDICTED),
    Case("history_longer_than_lookback", history(steps=500), PREDICTED),
    Case("history_with_negative_zero_and_subnormal", history(b"[-0.0, 5e-324]"), PREDICTED),
    Case("history_with_largest_u64", history(b"[18446744073709551615, 0]"), PREDICTED),
    Case("history_with_int_beyond_64_bits", history(b"[" + BIG_INT + b", 0]"), PREDICTED),
    Case("history_one_step_short", history(steps=LOOKBACK - 1), f"needs at least {LOOKBACK}"),
    Case("history_of_one_step", history(steps=1), f"needs at least {LOOKBACK}"),
    Case("empty_history", row("history", b"[]"), NOT_A_LIST),
    Case("history_is_a_dict_of_steps", row("history", b'{"0": [0.1, 0.2]}'), NOT_A_LIST),
    Case(
        "history_of_empty_steps", row("history", b"[[], []]"), "step 0 has 0 values, expected 2 (load, temp)"
    ),
    Case("flat_list_of_numbers", row("history", b"[0.1, 0.2, 0.3]"), "step 0 has 1 values, expected 2"),
    Case("ragged_steps", history(b"[0.5]"), "step 47 has 1 values, expected 2 (load, temp)"),
    Case("three_channels", history(b"[0.5, 0.5, 0.5]"), "step 47 has 3 values"),
    Case("boolean_value", history(b"[true, 0.5]"), "step 47 holds a boolean (True)"),
    Case(
        "lone_surrogate_in_the_field", history(b'["\\ud800", 0.5]'), "(a lone surrogate) in field 'history'"
    ),
    Case("string_number", history(b'["1.5", 0.5]'), "non-numeric value (str)"),
    Case("null_value", history(b"[null, 0.5]"), "non-numeric value (NoneType)"),
    Case("step_nested_deeper", history(b"[[0.5], 0.5]"), "nested deeper than one list"),
    Case("object_in_step", history(b'[{"v": 0.5}, 0.5]'), "nested deeper than one list"),
    Case("900_levels_in_the_field", row("history", b"[" * 900 + b"]" * 900), "step 0 has 1 values"),
    Case("nan_with_int_beyond_64_bits", history(b"[NaN, 0.5]", extra=b'"id": ' + BIG_INT), NOT_FINITE),
    Case("infinity", history(b"[Infinity, 0.5]"), NOT_FINITE),
    Case("minus_infinity", history(b"[0.5, -Infinity]"), NOT_FINITE),
    Case("1e400", history(b"[1e400, 0.5]"), NOT_FINITE),
    Case("int_of_400_digits", history(b"[" + b"9" * 400 + b", 0.5]"), NOT_FINITE),
    Case("1e308", history(b"[1e308, 0.5]"), BEYOND_FLOAT32),
    Case("5e38", history(b"[5e38, 0.5]"), BEYOND_FLOAT32),
    Case("minus_3.5e38", history(b"[0.5, -3.5e38]"), BEYOND_FLOAT32),
    Case("int_beyond_float32", history(b"[" + b"9" * 40 + b", 0.5]"), BEYOND_FLOAT32),
    Case("3.4e38_beyond_float32_once_scaled", history(b"[3.4e38, 0.5]"), "once scaled"),
]
