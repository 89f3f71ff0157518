"""The action model's malformed rows: ``sequence`` must hold 1 to 5000 steps of three channel values."""

from corpus import BIG_INT, PREDICTED, Case, json_cases, row

MAX_LENGTH = 5000
NOT_A_LIST = "'sequence' must be a non-empty list of time steps"
NOT_FINITE = "holds a NaN or infinite value"
BEYOND_FLOAT32 = "beyond float32's range"


def sequence(last: bytes = b"[5.5, 4.5, 5.0]", steps: int = 5, extra: bytes = b"") -> bytes:
    """A row whose sequence is ``steps`` good steps, the last one given as raw JSON text, then ``extra``."""
    return row("sequence", b"[" + b"[5.1, 4.9, 5.2], " * (steps - 1) + last + b"]", extra)


CASES = [
    *json_cases("sequence", [[5.1, 4.9, 5.2]] * 5, NOT_A_LIST, NOT_A_LIST),
    Case("one_step", sequence(steps=1), PREDICTED),
    Case("sequence_of_ints", sequence(b"[5, 4, 6]"), PREDICTED),
    Case("max_length_steps", sequence(steps=MAX_LENGTH), PREDICTED),
    Case("one_step_too_many", sequence(steps=MAX_LENGTH + 1), f"more than max_length {MAX_LENGTH}"),
    Case("sequence_with_negative_zero_and_subnormal", sequence(b"[-0.0, 5e-324, 5]"), PREDICTED),
    Case("sequence_with_int_beyond_64_bits", sequence(b"[" + BIG_INT + b", 5, 5]"), PREDICTED),
    Case("empty_sequence", row("sequence", b"[]"), NOT_A_LIST),
    Case("sequence_is_a_dict_of_steps", row("sequence", b'{"0": [5, 5, 5]}'), NOT_A_LIST),
    Case("sequence_of_empty_steps", row("sequence", b"[[]]"), "step 0 has 0 values, expected 3"),
    Case("flat_list_of_numbers", row("sequence", b"[5.1, 4.9, 5.2]"), "step 0 has 1 values, expected 3"),
    Case("ragged_steps", sequence(b"[5.5, 4.5]"), "step 4 has 2 values, expected 3"),
    Case("four_channels", sequence(b"[5.5, 4.5, 5.0, 5.0]"), "step 4 has 4 values, expected 3"),
    Case("boolean_value", sequence(b"[5.5, false, 5.0]"), "step 4 holds a boolean (False)"),
    Case(
        "lone_surrogate_in_the_field",
        sequence(b'[5, "\\udfff", 5]'),
        "(a lone surrogate) in field 'sequence'",
    ),
    Case("string_number", sequence(b'[5.5, "1.5", 5.0]'), "non-numeric value (str)"),
    Case("null_value", sequence(b"[5.5, null, 5.0]"), "non-numeric value (NoneType)"),
    Case("step_nested_deeper", sequence(b"[5.5, [4.5], 5.0]"), "nested deeper than one list"),
    Case("object_in_step", sequence(b'[5.5, {"v": 4.5}, 5.0]'), "nested deeper than one list"),
    Case("900_levels_in_the_field", row("sequence", b"[" * 900 + b"]" * 900), "step 0 has 1 values"),
    Case(
        "nan_with_int_beyond_64_bits",
        sequence(b"[NaN, 5, 5]", extra=b'"id": ' + BIG_INT),
        NOT_FINITE,
    ),
    Case("infinity", sequence(b"[Infinity, 5, 5]"), NOT_FINITE),
    Case("minus_infinity", sequence(b"[5, 5, -Infinity]"), NOT_FINITE),
    Case("1e400", sequence(b"[1e400, 5, 5]"), NOT_FINITE),
    Case("1e308", sequence(b"[1e308, 5, 5]"), BEYOND_FLOAT32),
    Case("5e38", sequence(b"[5, 5e38, 5]"), BEYOND_FLOAT32),
    Case("minus_3.5e38", sequence(b"[5, 5, -3.5e38]"), BEYOND_FLOAT32),
    Case("3.4e38_beyond_float32_once_scaled", sequence(b"[3.4e38, 5, 5]"), "once scaled"),
]
