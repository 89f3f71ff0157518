"""The sentiment model's malformed rows: ``text`` must be a non-blank string."""

from corpus import PREDICTED, Case, row, text_cases

CASES = [
    *text_cases("a great and moving film", "missing field 'text'"),
    Case("text_of_digits", row("text", b'"12345"'), PREDICTED),
]
