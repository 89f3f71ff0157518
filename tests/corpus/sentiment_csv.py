"""The sentiment model's malformed CSV records (columns ``id,text``; the file starts with a BOM).

Each case is one CSV record, which may span lines; blank lines are numbered but are no rows. The
last case opens a quote that is never closed: it swallows the rest of the file and is one error.
"""

from corpus import NOT_A_ROW, PREDICTED, Case

HEADER = b"\xef\xbb\xbfid,text"
EMPTY = "'text' is empty"
CSV_DEFAULT_FIELD_LIMIT = 131_072  # characters; longer fields must still be read

CASES = [
    Case("valid", b"1,a great and moving film", PREDICTED),
    Case("quoted_text_with_comma", b'2,"a great, moving film"', PREDICTED),
    Case("escaped_quotes", b'3,"a ""great"" film"', PREDICTED),
    Case("quoted_line_break", b'4,"a great\nfilm"', PREDICTED),
    Case("crlf_line_end", b"5,a great film\r", PREDICTED),
    Case("quoted_field_beyond_default_limit", b'6,"' + b"great " * CSV_DEFAULT_FIELD_LIMIT + b'"', PREDICTED),
    Case("unquoted_field_beyond_default_limit", b"7," + b"fun " * CSV_DEFAULT_FIELD_LIMIT, PREDICTED),
    Case("nul_byte", b"8,great\x00film", PREDICTED),
    Case("invalid_utf8_byte", b"9,caf\xe9 great", "not valid UTF-8 (byte 0xe9)"),
    Case("utf8_encoded_surrogate", b"10,great \xed\xa0\x80", "not valid UTF-8 (byte 0xed)"),
    Case("quote_inside_unquoted_field", b'11,grea"t film', PREDICTED),
    Case("too_few_fields", b"12", "row has 1 fields, header has 2"),
    Case("too_many_fields", b"13,great,film", "row has 3 fields, header has 2"),
    Case("tab_separated", b"14\tgreat film", "row has 1 fields, header has 2"),
    Case("whitespace_only_line", b"   ", "row has 1 fields, header has 2"),
    Case("empty_text", b"15,", EMPTY),
    Case("blank_text", b"16,   ", EMPTY),
    Case("quoted_empty_text", b'17,""', EMPTY),
    Case("only_a_comma", b",", EMPTY),
    Case("blank_line", b"", NOT_A_ROW),
    Case("text_after_closing_quote", b'18,"great" film', "',' expected after '\"'"),
    Case("valid_after_errors", b"19,a dull and boring plot", PREDICTED),
    Case("quote_never_closed", b'20,"never closed\n21,swallowed\n22,swallowed too', "quote never closed"),
]
