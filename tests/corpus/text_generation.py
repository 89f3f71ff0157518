"""The language model's malformed rows: ``prompt`` (or ``text`` to score) must be a string it can read,
and sampling settings must be numbers in range."""

from corpus import PREDICTED, Case, json_cases, row

EITHER = "either 'prompt'"
NOT_A_STRING = "'prompt' must be a string"


def prompt(extra: bytes) -> bytes:
    return row("prompt", b'"the cat"', extra)


# A null (or NaN, as a table fills a gap) is a missing field here, like a sampling setting left out.
LEFT_OUT = {"field_is_null", "field_is_nan"}
CASES = [
    *(
        Case(case.name, case.line, EITHER) if case.name in LEFT_OUT else case
        for case in json_cases("prompt", "the cat", EITHER, NOT_A_STRING)
    ),
    Case("text_to_score", row("text", b'"the cat sat on the mat."'), PREDICTED),
    Case("text_of_one_character", row("text", b'"a"'), "needs at least 2"),
    Case("text_is_number", row("text", b"7"), "'text' must be a string"),
    Case("both_prompt_and_text", prompt(b'"text": "the cat"'), EITHER),
    Case("empty_prompt", row("prompt", b'""'), "no character the model knows"),
    Case("prompt_of_unknown_characters", row("prompt", '"中文"'.encode()), "no character the model knows"),
    Case("prompt_with_some_unknown_characters", row("prompt", '"the ✓ cat"'.encode()), PREDICTED),
    Case("prompt_of_200k_characters", row("prompt", b'"' + b"a" * 200_000 + b'"'), "more than 100000"),
    Case("lone_surrogate_in_prompt", row("prompt", b'"the \\ud800"'), "lone surrogate"),
    Case(
        "all_sampling_settings",
        prompt(b'"max_new_tokens": 5, "temperature": 0.7, "top_k": 3, "top_p": 0.9, "seed": 1'),
        PREDICTED,
    ),
    Case("greedy", prompt(b'"temperature": 0'), PREDICTED),
    Case("null_setting_is_the_default", prompt(b'"top_k": null'), PREDICTED),
    Case("integral_float_count", prompt(b'"max_new_tokens": 4.0'), PREDICTED),
    Case("temperature_is_string", prompt(b'"temperature": "hot"'), "'temperature' must be a number"),
    Case("temperature_is_negative", prompt(b'"temperature": -1'), "outside"),
    Case("temperature_is_nan_left_to_the_default", prompt(b'"temperature": NaN'), PREDICTED),
    Case("temperature_is_infinite", prompt(b'"temperature": Infinity'), "outside"),
    Case("top_p_is_zero", prompt(b'"top_p": 0'), "outside"),
    Case("top_p_above_one", prompt(b'"top_p": 1.5'), "outside"),
    Case("top_k_is_fractional", prompt(b'"top_k": 1.5'), "an integer"),
    Case("max_new_tokens_is_zero", prompt(b'"max_new_tokens": 0'), "outside"),
    Case("max_new_tokens_too_many", prompt(b'"max_new_tokens": 100000'), "outside"),
    Case("seed_beyond_32_bits", prompt(b'"seed": 1099511627776'), "outside"),
    Case("seed_is_boolean", prompt(b'"seed": true'), "an integer"),
    Case("seed_is_list", prompt(b'"seed": [1]'), "an integer"),
]
