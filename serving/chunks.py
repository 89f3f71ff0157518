"""Input files cut into deterministic chunks: the unit a batch job reads, predicts, writes and resumes by.

Chunk ``k`` always holds the same rows for the same file and chunk size (lines of a JSONL file,
records of a CSV file, record batches of a Parquet file), so a resumed or sharded job produces
exactly the output of a single uninterrupted run. Chunks carry raw rows (bytes, CSV fields, an Arrow
batch); turning them into records is ``chunk_rows``, which runs wherever the chunk is predicted.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from tasks import InvalidRow

INPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
Row = tuple[int, dict[str, Any] | InvalidRow]


@dataclass(frozen=True)
class RawChunk:
    """Rows of one chunk, not yet parsed.

    Attributes:
        index: Position of the chunk in the file (0-based).
        first_row: Number of its first row (1-based: JSONL line, CSV record after the header, Parquet row).
        kind: ``jsonl``, ``csv``, ``parquet`` or ``series`` (a whole CSV file as one time series).
        payload: JSONL lines (bytes), CSV field lists, an Arrow table, or a series CSV's bytes.
        header: CSV column names.
        position: Input consumed once this chunk is read (bytes, or rows for Parquet), for progress.
    """

    index: int
    first_row: int
    kind: str
    payload: Any
    header: tuple[str, ...] = ()
    position: int = 0


def file_format(path: Path, formats: dict[str, str], role: str) -> str:
    """A file's kind from its suffix.

    Raises:
        ValueError: For an unsupported suffix, naming the ``role`` and the supported ones.
    """
    try:
        return formats[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"unsupported {role} file {path.name}: use one of {sorted(formats)}") from None


def input_format(path: Path) -> str:
    """The input kind (``jsonl``, ``csv`` or ``parquet``) from the file suffix."""
    return file_format(path, INPUT_FORMATS, "input")


def input_size(path: Path) -> int:
    """Progress total: rows of a Parquet file, bytes of anything else."""
    return pq.ParquetFile(path).metadata.num_rows if input_format(path) == "parquet" else path.stat().st_size


def iter_chunks(
    path: Path, chunk_size: int, series: bool = False, skip: frozenset[int] = frozenset()
) -> Iterator[RawChunk]:
    """Yield the file's chunks in order; chunks in ``skip`` (already done) are passed over unread.

    Args:
        path: A JSONL, CSV or Parquet file.
        chunk_size: Rows per chunk (the last one may be shorter).
        series: Read a CSV as a single time series: one chunk holding the whole file.
        skip: Chunk indices not to yield.
    """
    kind = input_format(path)
    if series:
        if kind != "csv":
            raise ValueError("a series input must be a CSV file with one line per time step")
        yield RawChunk(0, 1, "series", path.read_bytes(), position=path.stat().st_size)
    elif kind == "parquet":
        first = 1
        for index, table in enumerate(_parquet_tables(path, chunk_size)):
            if index not in skip:
                yield RawChunk(index, first, kind, table, position=first + table.num_rows - 1)
            first += table.num_rows
    else:
        with path.open("rb") as stream:
            lines: Iterator[Any] = stream
            header: tuple[str, ...] = ()
            if kind == "csv":
                reader = csv.reader(
                    io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline="")
                )
                header, lines = tuple(next(reader, None) or ()), reader
            for index, first in enumerate(range(1, 1 << 62, chunk_size)):
                rows = list(islice(lines, chunk_size))
                if not rows:
                    return
                if index not in skip:
                    yield RawChunk(index, first, kind, rows, header, _tell(stream))


def _parquet_tables(path: Path, chunk_size: int) -> Iterator[pa.Table]:
    """Exactly ``chunk_size`` rows at a time (the last may be shorter), whatever the row groups are."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
        pending.append(batch)
        count += batch.num_rows
        while count >= chunk_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_size)
            rest = table.slice(chunk_size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def _tell(stream: io.BufferedReader) -> int:
    try:
        return stream.tell()
    except OSError:  # a text wrapper over the stream is mid-read
        return 0


def chunk_rows(chunk: RawChunk, series_columns: list[str] | None = None) -> list[Row]:
    """Parse a chunk into ``(row number, record or InvalidRow)``; blank lines are numbered but skipped."""
    if chunk.kind == "series":
        return [(1, _series_record(chunk.payload, series_columns or []))]
    if chunk.kind == "parquet":
        return list(enumerate(chunk.payload.to_pylist(), start=chunk.first_row))
    rows: list[Row] = []
    for number, raw in enumerate(chunk.payload, start=chunk.first_row):
        if chunk.kind == "jsonl":
            if raw.strip():
                rows.append((number, _json_record(raw)))
        elif raw:  # a blank CSV line is not a row
            if len(raw) != len(chunk.header):
                rows.append(
                    (number, InvalidRow(f"row has {len(raw)} fields, header has {len(chunk.header)}"))
                )
            else:
                rows.append((number, dict(zip(chunk.header, raw, strict=True))))
    return rows


def _json_record(raw: bytes) -> dict[str, Any] | InvalidRow:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:  # the standard library also reads NaN and Infinity, so the codec can name them
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            return InvalidRow(f"broken JSON: {error}")
    return record if isinstance(record, dict) else InvalidRow("expected a JSON object")


def _series_record(data: bytes, columns: list[str]) -> dict[str, Any] | InvalidRow:
    """A whole CSV as one series: a row whose ``history`` holds ``columns`` of every line."""
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        return InvalidRow(f"series CSV lacks column(s) {missing}")
    history = []
    for line in reader:
        try:
            history.append([float(line[c]) for c in columns])
        except (TypeError, ValueError):
            return InvalidRow(f"line {reader.line_num}: non-numeric value in {columns}")
    return {"history": history}
