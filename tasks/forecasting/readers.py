"""``seqops predict --reader series``: a CSV with one line per time step, read as a single history."""

from __future__ import annotations

import csv
import io
from typing import Any

from tasks.common.errors import InvalidRow
from tasks.common.hooks import WholeFileReader

MAX_FIELD = 8 * 1024 * 1024  # characters, as for any CSV input of the batch job


def series_record(data: bytes, codec: Any) -> dict[str, Any] | InvalidRow:
    """A whole CSV as one row: ``history`` holds the model's columns (``codec.columns``) of every line."""
    columns = codec.columns
    csv.field_size_limit(MAX_FIELD)
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
    history = []
    try:
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            return InvalidRow(f"series CSV lacks column(s) {missing}")
        for line in reader:
            try:
                history.append([float(line[c]) for c in columns])
            except (TypeError, ValueError):
                return InvalidRow(f"line {reader.line_num}: non-numeric value in {columns}")
    except csv.Error as error:
        return InvalidRow(f"series CSV line {reader.line_num} could not be read: {error}")
    return {"history": history}


SERIES = WholeFileReader(
    "one time series as CSV: a line per step, a column per model input (by name), target first",
    ("csv",),
    series_record,
)
