"""Input files cut into deterministic chunks: the unit a batch job reads, predicts, writes and resumes by.

Chunk ``k`` always holds the same rows for the same file and chunk size (lines of a JSONL file,
records of a CSV file, record batches of a Parquet file), so a resumed or sharded job produces
exactly the output of a single uninterrupted run. Chunks carry raw rows (bytes, CSV fields, an Arrow
batch); turning them into records is ``serving.records.chunk_rows``, which runs wherever the chunk is
predicted.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from serving.errors import JobError
from tasks import InvalidRow

INPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
# Longest CSV field read (characters): a longer one, or an unterminated quote, becomes an error row.
MAX_CSV_FIELD = 8 * 1024 * 1024
UNDECODABLE = re.compile("[\udc80-\udcff]")


@dataclass(frozen=True)
class RawChunk:
    """Rows of one chunk, not yet parsed.

    Attributes:
        index: Position of the chunk in the file (0-based).
        first_row: Number of its first row (1-based: JSONL line, CSV record after the header, Parquet row).
        kind: ``jsonl``, ``csv``, ``parquet`` or ``whole`` (a whole file, read as one row by a task's reader).
        payload: JSONL lines (bytes), CSV field lists, an Arrow table, or a whole file's bytes.
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
        JobError: For an unsupported suffix, naming the ``role`` and the supported ones.
    """
    try:
        return formats[path.suffix.lower()]
    except KeyError:
        raise JobError(f"unsupported {role} file {path.name}: use one of {sorted(formats)}") from None


def input_format(path: Path) -> str:
    """The input kind (``jsonl``, ``csv`` or ``parquet``) from the file suffix."""
    return file_format(path, INPUT_FORMATS, "input")


def check_input(path: Path) -> str:
    """The input's kind, once the file is known to be readable as such (a CSV header, a Parquet footer).

    Raises:
        JobError: For a missing, unreadable or unsupported file, naming it and the reason.
    """
    kind = input_format(path)
    if not path.is_file():
        raise JobError(
            f"input file not found: {path}" if not path.exists() else f"the input {path} is not a file"
        )
    try:
        if kind == "parquet":
            pq.ParquetFile(path)
        else:
            with path.open("rb") as stream:
                if kind == "csv":
                    csv_header(csv_reader(stream), path)
    except OSError as error:
        raise JobError(f"cannot read the input {path}: {error.strerror or error}") from None
    except pa.ArrowException as error:
        raise JobError(f"the input {path} is not a readable {kind} file: {error}") from None
    return kind


def input_size(path: Path) -> int:
    """Progress total: rows of a Parquet file, bytes of anything else."""
    return pq.ParquetFile(path).metadata.num_rows if input_format(path) == "parquet" else path.stat().st_size


def iter_chunks(
    path: Path, chunk_size: int, whole_file: bool = False, skip: frozenset[int] = frozenset()
) -> Iterator[RawChunk]:
    """Yield the file's chunks in order; chunks in ``skip`` (already done) are passed over unread.

    Args:
        path: A JSONL, CSV or Parquet file.
        chunk_size: Rows per chunk (the last one may be shorter).
        whole_file: One chunk holding the whole file, for a task's reader (``seqops predict --reader``).
        skip: Chunk indices not to yield.
    """
    kind = input_format(path)
    if whole_file:
        yield RawChunk(0, 1, "whole", path.read_bytes(), position=path.stat().st_size)
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
                reader = csv_reader(stream)
                header, lines = csv_header(reader, path), csv_records(reader)
            for index, first in enumerate(range(1, 1 << 62, chunk_size)):
                rows = list(islice(lines, chunk_size))
                if not rows:
                    return
                if index not in skip:
                    yield RawChunk(index, first, kind, rows, header, _tell(stream))


def _parquet_tables(path: Path, chunk_size: int) -> Iterator[pa.Table]:
    """Exactly ``chunk_size`` rows at a time (the last may be shorter), whatever the row groups are."""
    pending: list[pa.RecordBatch] = []
    count = read = 0
    batches = pq.ParquetFile(path).iter_batches(batch_size=chunk_size)
    while True:
        try:
            batch = next(batches, None)
        except (pa.ArrowException, OSError) as error:  # a damaged row group: what follows is unreadable
            raise JobError(f"the input {path} cannot be read after row {read}: {error}") from None
        if batch is None:
            break
        pending.append(batch)
        count += batch.num_rows
        read += batch.num_rows
        while count >= chunk_size:
            table = pa.Table.from_batches(pending)
            yield table.slice(0, chunk_size)
            rest = table.slice(chunk_size)
            pending, count = rest.to_batches(), rest.num_rows
    if count:
        yield pa.Table.from_batches(pending)


def csv_reader(stream: io.BufferedReader) -> Any:
    """A strict ``csv.reader`` over a binary stream, with fields of up to ``MAX_CSV_FIELD`` characters.

    The bytes are read as UTF-8 (a BOM is dropped); invalid bytes are kept as escapes, for
    ``csv_records`` to refuse. Strict, because a lenient reader takes a quote never closed as a field
    running to the end of the file: every row after it would vanish into one predicted row.
    """
    csv.field_size_limit(MAX_CSV_FIELD)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    return csv.reader(text, strict=True)


def csv_header(reader: Any, path: Path) -> tuple[str, ...]:
    """The column names, the first record of ``csv_reader``'s file (none for an empty file).

    Raises:
        JobError: If the header cannot be read, or is not UTF-8 (a UTF-16 file, say).
    """
    try:
        header = tuple(next(reader, None) or ())
    except csv.Error as error:
        raise JobError(f"the input {path} is not a readable csv file: {error}") from None
    if any(_undecodable_byte(name) is not None for name in header):
        raise JobError(f"the header of {path} is not UTF-8 text; save the file as UTF-8")
    return header


def csv_records(reader: Any) -> Iterator[list[str] | InvalidRow]:
    """The reader's records, each a list of fields or, where it could not be read, an ``InvalidRow``.

    A field over the limit, a quote never closed or text after a closing quote costs the lines it
    spans; reading goes on after.
    """
    while True:
        start = reader.line_num + 1
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield InvalidRow(
                f"CSV lines {start}-{reader.line_num} could not be read ({error}): a quote never closed "
                f"or misplaced, or a field over {MAX_CSV_FIELD:,} characters"
            )
            continue
        bad = next((b for b in map(_undecodable_byte, fields) if b is not None), None)
        yield fields if bad is None else InvalidRow(f"not valid UTF-8 (byte {bad:#04x})")


def _undecodable_byte(text: str) -> int | None:
    """The first byte UTF-8 could not decode, kept by ``surrogateescape`` as U+DC80..U+DCFF."""
    if text.isascii():
        return None
    found = UNDECODABLE.search(text)
    return ord(found.group()) - 0xDC00 if found else None


def _tell(stream: io.BufferedReader) -> int:
    try:
        return stream.tell()
    except OSError:  # a text wrapper over the stream is mid-read
        return 0
