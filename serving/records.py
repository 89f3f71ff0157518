"""Rows of a chunk turned into records: parsed, checked as text, or set aside with the reason.

Nothing a row holds ends the job. Broken JSON, invalid UTF-8, lone surrogates, JSON nested beyond
the parser's reach, a CSV record with the wrong number of fields or an unreadable Parquet value each
become an ``InvalidRow``; what a record means is then the codec's to check.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa

from serving.chunks import RawChunk
from tasks import InvalidRow

UTF8_BOM = b"\xef\xbb\xbf"
Row = tuple[int, dict[str, Any] | InvalidRow]
WholeFileRead = Callable[[bytes], dict[str, Any] | InvalidRow]


def chunk_rows(chunk: RawChunk, whole_file: WholeFileRead | None = None) -> list[Row]:
    """Parse a chunk into ``(row number, record or InvalidRow)``; blank lines are numbered but skipped.

    Args:
        chunk: The chunk.
        whole_file: Reads a whole-file chunk's bytes as one row (a task's reader, bound to its codec).
    """
    if chunk.kind == "whole":
        if whole_file is None:
            raise ValueError("a whole-file chunk needs a reader")
        return [(1, whole_file(chunk.payload))]
    if chunk.kind == "parquet":
        return list(enumerate(parquet_records(chunk.payload), start=chunk.first_row))
    rows: list[Row] = []
    for number, raw in enumerate(chunk.payload, start=chunk.first_row):
        if chunk.kind == "jsonl":
            if raw.strip():
                rows.append(
                    (number, json_record(raw[3:] if number == 1 and raw.startswith(UTF8_BOM) else raw))
                )
        elif isinstance(raw, InvalidRow):
            rows.append((number, raw))
        elif raw:  # a blank CSV line is not a row
            if len(raw) != len(chunk.header):
                rows.append(
                    (number, InvalidRow(f"row has {len(raw)} fields, header has {len(chunk.header)}"))
                )
            else:
                rows.append((number, dict(zip(chunk.header, raw, strict=True))))
    return rows


def parquet_records(table: pa.Table) -> list[dict[str, Any] | InvalidRow]:
    """A Parquet chunk's rows as records; a row holding a value Arrow cannot convert is an ``InvalidRow``."""
    try:
        return table.to_pylist()
    except (pa.ArrowException, ValueError):  # one bad value (say, invalid UTF-8): find its row
        records: list[dict[str, Any] | InvalidRow] = []
        for index in range(table.num_rows):
            try:
                records.extend(table.slice(index, 1).to_pylist())
            except (pa.ArrowException, ValueError) as row_error:
                records.append(InvalidRow(f"unreadable Parquet value: {row_error}"))
        return records


def json_record(raw: bytes) -> dict[str, Any] | InvalidRow:
    """One JSONL line as a record (a JSON object), or the reason it is none."""
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        record = _lenient_json(raw)
        if isinstance(record, InvalidRow):
            return record
    return record if isinstance(record, dict) else InvalidRow("expected a JSON object")


def _lenient_json(raw: bytes) -> Any:
    """A line orjson refused, read by the standard library, or the reason it is no row.

    The standard library also reads NaN and Infinity (so the codec can name them) and lone surrogates
    (refused here, naming the field); integers beyond 64 bits become floats, as orjson reads them.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return InvalidRow(f"not valid UTF-8 (byte {raw[error.start]:#04x} at position {error.start})")
    try:
        record = json.loads(text, parse_int=_json_int)
    except RecursionError:
        return InvalidRow("broken JSON: nested too deeply")
    except ValueError as error:
        return InvalidRow(f"broken JSON: {error}")
    field = _invalid_unicode(record)
    return InvalidRow(f"invalid Unicode (a lone surrogate) in {field}") if field else record


def _json_int(text: str) -> int | float:
    """An integer as orjson reads it: exact within 64 bits, else a float (infinite beyond float64)."""
    value = int(text) if len(text) <= 20 else None
    return value if value is not None and -(2**63) <= value < 2**64 else float(text)


def _invalid_unicode(value: Any) -> str | None:
    """Where a string that is not valid Unicode lies in a parsed JSON value (``None``: nowhere)."""
    stack = [("the row", value)]
    while stack:  # iterative: the value may be nested as deep as the JSON parser allows
        where, item = stack.pop()
        if isinstance(item, str) and not _encodable(item):
            return where
        if isinstance(item, dict):
            for key, inner in item.items():
                if not _encodable(key):
                    return f"a field name in {where}"
                stack.append((f"field '{key}'" if where == "the row" else where, inner))
        elif isinstance(item, list):
            stack.extend((where, inner) for inner in item)
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
