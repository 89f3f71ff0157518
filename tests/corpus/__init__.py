"""Malformed input rows per task, each with what a batch job must make of it.

A ``Case`` is one raw JSONL line (or CSV record) and the reason its error record must give, or
``PREDICTED`` for a row that must be predicted despite its oddity. ``json_cases`` holds what every
task's rows share (the JSON layer and the fields a job only echoes); each task module adds what its
own field may hold. Huge lines are built here in code, never stored as files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

PREDICTED = None
NOT_A_ROW = "<not a row>"  # a blank line: numbered, but neither predicted nor an error
DEEP = 5000  # levels of nesting, far beyond what any JSON parser here recurses into
LONE_SURROGATE = "invalid Unicode (a lone surrogate)"
NOT_AN_OBJECT = "expected a JSON object"
BROKEN = "broken JSON"
NOT_UTF8 = "not valid UTF-8"
BIG_INT = b"123456789012345678901234567890"  # beyond 64 bits: read as a float


@dataclass(frozen=True)
class Case:
    """One input row.

    Attributes:
        name: Short name, shown when the case fails.
        line: The raw bytes of the row, without its line end.
        reason: A substring of the error record's reason; ``PREDICTED`` (None) for a row that must be
            predicted; ``NOT_A_ROW`` for a blank line.
    """

    name: str
    line: bytes
    reason: str | None


def dumps(value: Any) -> bytes:
    """Standard JSON with ASCII escapes (lone surrogates become ``\\udXXX``)."""
    return json.dumps(value).encode()


def row(field: str, value: bytes, extra: bytes = b"") -> bytes:
    """A JSON object whose ``field`` holds the raw JSON text ``value``, then ``extra`` members."""
    return b'{"' + field.encode() + b'": ' + value + (b", " + extra if extra else b"") + b"}"


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def json_cases(field: str, valid: Any, missing: str, wrong_type: str) -> list[Case]:
    """Cases every task shares: ``valid`` is a value of ``field`` that must be predicted.

    Args:
        field: The field the task's codec reads.
        valid: A good value for it.
        missing: The reason for a row without the field.
        wrong_type: The reason for a number, boolean, null, string or object where ``valid``'s type is
            expected.
    """
    good = dumps(valid)
    other = b'"x"' if isinstance(valid, list) else b"[1, 2]"  # the wrong one of string and list
    return [
        Case("bom_at_start_of_file", b"\xef\xbb\xbf" + row(field, good), PREDICTED),  # must stay first
        Case("valid", row(field, good), PREDICTED),
        Case("crlf_line_end", row(field, good) + b"\r", PREDICTED),
        Case("spaces_and_tabs_around", b" \t " + row(field, good) + b" \t", PREDICTED),
        Case("extra_fields", row(field, good, b'"id": 7, "tags": [1, 2], "meta": {"a": null}'), PREDICTED),
        Case("nan_in_echoed_field", row(field, good, b'"score": NaN'), PREDICTED),
        Case(
            "infinities_and_int_beyond_64_bits",
            row(field, good, b'"hi": Infinity, "lo": -Infinity, "id": ' + BIG_INT),
            PREDICTED,
        ),
        Case("nan_and_int_beyond_64_bits", row(field, good, b'"score": NaN, "id": ' + BIG_INT), PREDICTED),
        Case("int_beyond_64_bits_echoed", row(field, good, b'"id": ' + BIG_INT), PREDICTED),
        Case("largest_unsigned_64_bit_int", row(field, good, b'"id": 18446744073709551615'), PREDICTED),
        Case("int_below_signed_64_bits", row(field, good, b'"id": -9223372036854775809'), PREDICTED),
        Case("int_of_400_digits_echoed", row(field, good, b'"id": ' + b"9" * 400), PREDICTED),
        Case("1e400_echoed", row(field, good, b'"id": 1e400'), PREDICTED),
        Case("duplicate_key_last_good", row(field, other, b'"' + field.encode() + b'": ' + good), PREDICTED),
        Case("duplicate_key_last_bad", row(field, good, b'"' + field.encode() + b'": ' + other), wrong_type),
        Case("surrogate_pair_escape_echoed", row(field, good, b'"note": "\\ud83d\\ude00"'), PREDICTED),
        Case("raw_utf8_echoed", row(field, good, '"note": "日本語 ü \u2028"'.encode()), PREDICTED),
        Case("nul_escape_echoed", row(field, good, b'"note": "a\\u0000b"'), PREDICTED),
        Case("empty_key_echoed", row(field, good, b'"": 1'), PREDICTED),
        Case("200k_chars_echoed", row(field, good, b'"note": "' + b"n" * 200_000 + b'"'), PREDICTED),
        Case("500_levels_in_other_field", row(field, good, b'"meta": ' + nested(500)), PREDICTED),
        Case("whitespace_only_line", b" \t ", NOT_A_ROW),
        Case("empty_line", b"", NOT_A_ROW),
        # the JSON layer
        Case("unterminated_string", row(field, b'"abc'), BROKEN),
        Case("missing_closing_brace", row(field, good)[:-1], BROKEN),
        Case("trailing_comma", row(field, good)[:-1] + b", }", BROKEN),
        Case("single_quotes", b"{'" + field.encode() + b"': 1}", BROKEN),
        Case("bare_word", b"hello", BROKEN),
        Case("two_objects_on_a_line", row(field, good) + b" {}", BROKEN),
        Case("comment_after_object", row(field, good) + b" // note", BROKEN),
        Case("hex_number", row(field, good, b'"id": 0x10'), BROKEN),
        Case("raw_control_character_in_string", row(field, good, b'"note": "a\rb"'), BROKEN),
        Case("bom_in_a_later_line", b"\xef\xbb\xbf" + row(field, good), "BOM"),
        Case("json_array", b"[" + row(field, good) + b"]", NOT_AN_OBJECT),
        Case("json_string", b'"text"', NOT_AN_OBJECT),
        Case("json_number", b"42", NOT_AN_OBJECT),
        Case("json_null", b"null", NOT_AN_OBJECT),
        Case("json_true", b"true", NOT_AN_OBJECT),
        Case("bare_nan", b"NaN", NOT_AN_OBJECT),
        Case(f"{DEEP}_levels_in_the_field", row(field, nested(DEEP)), "nested too deeply"),
        Case(
            f"{DEEP}_levels_in_other_field", row(field, good, b'"meta": ' + nested(DEEP)), "nested too deeply"
        ),
        Case(f"{DEEP}_open_brackets", b"[" * DEEP, "nested too deeply"),
        Case("lone_high_surrogate_in_other_field", row(field, good, b'"note": "\\ud800"'), "field 'note'"),
        Case("lone_low_surrogate_in_list", row(field, good, b'"tags": ["ok", "\\udfff"]'), "field 'tags'"),
        Case("lone_surrogate_in_key", row(field, good, b'"\\ud800": 1'), f"{LONE_SURROGATE} in a field name"),
        Case("reversed_surrogate_pair", row(field, good, b'"note": "\\ude00\\ud83d"'), LONE_SURROGATE),
        Case("latin1_byte", row(field, good, b'"note": "caf\xe9"'), NOT_UTF8),
        Case("overlong_utf8_encoding", row(field, good, b'"note": "\xc0\xaf"'), NOT_UTF8),
        Case("utf8_encoded_surrogate", row(field, good, b'"note": "\xed\xa0\x80"'), NOT_UTF8),
        Case("truncated_utf8_sequence", row(field, good, b'"note": "\xe2\x82"'), NOT_UTF8),
        Case("byte_ff", b"\xff" + row(field, good), NOT_UTF8),
        Case("utf16_line", row(field, good).decode().encode("utf-16"), NOT_UTF8),
        # the field
        Case("empty_object", b"{}", missing),
        Case("field_name_in_other_case", row(field.upper(), good), missing),
        Case("field_is_number", row(field, b"42"), wrong_type),
        Case("field_is_float", row(field, b"-3.5e2"), wrong_type),
        Case("field_is_true", row(field, b"true"), wrong_type),
        Case("field_is_null", row(field, b"null"), wrong_type),
        Case("field_is_object", row(field, b'{"a": ' + good + b"}"), wrong_type),
        Case("field_is_the_other_of_string_and_list", row(field, other), wrong_type),
        Case("field_is_nan", row(field, b"NaN", b'"id": ' + BIG_INT), wrong_type),
        Case("field_is_int_beyond_64_bits", row(field, BIG_INT), wrong_type),
    ]


NOT_A_STRING = "'text' must be a string"
EMPTY_TEXT = "'text' is empty"


def text_cases(valid: str, missing: str) -> list[Case]:
    """Cases of a task whose rows hold ``text``; ``valid`` is a sentence of the model's own words."""
    word = max(valid.split(), key=len).encode()
    return [
        *json_cases("text", valid, missing, NOT_A_STRING),
        Case("empty_text", row("text", b'""'), EMPTY_TEXT),
        Case("blank_text", row("text", b'"   "'), EMPTY_TEXT),
        Case("escaped_whitespace_text", row("text", b'"\\t\\n\\r "'), EMPTY_TEXT),
        Case("unicode_spaces_text", row("text", b'"\\u00a0\\u3000\\u2028"'), EMPTY_TEXT),
        Case("lone_surrogate_in_text", row("text", b'"' + word + b' \\ud800"'), "in field 'text'"),
        Case("list_of_strings_text", row("text", b'["' + word + b'"]'), NOT_A_STRING),
        Case(
            "text_of_200k_chars",
            row("text", b'"' + (word + b" ") * (200_000 // (len(word) + 1)) + b'"'),
            PREDICTED,
        ),
        Case("text_of_unknown_words", row("text", b'"zyzzyva quux"'), PREDICTED),
        Case("text_of_punctuation", row("text", b'"!!! ???"'), PREDICTED),
        Case("text_of_emoji_pair_escape", row("text", b'"\\ud83d\\ude00"'), PREDICTED),
        Case("text_of_zero_width_space", row("text", b'"\\u200b"'), PREDICTED),
        Case("text_with_nul_escape", row("text", b'"' + word + b"\\u0000" + word + b'"'), PREDICTED),
        Case("text_of_control_characters", row("text", b'"\\u0001\\u0002"'), PREDICTED),
        Case("text_with_raw_non_ascii", row("text", '"très «bien» 映画"'.encode()), PREDICTED),
    ]
