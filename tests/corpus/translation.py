"""The translation model's malformed rows: ``text`` must be a string with at least one token."""

from corpus import NOT_A_STRING, PREDICTED, Case, row, text_cases

CASES = [
    *text_cases("ka lo mi", NOT_A_STRING),  # a missing text reads as None: "must be a string"
    Case("text_of_5000_words_truncated", row("text", b'"' + b"lo mi " * 2500 + b'"'), PREDICTED),
]
