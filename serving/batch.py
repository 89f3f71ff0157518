"""The batch inference job: a file of inputs in, predictions and error records out.

Input is read, predicted and written chunk by chunk, so memory stays flat whatever the file
size. Outputs go to ``<name>.partial`` and are renamed only when complete. Every row that
cannot be predicted lands in ``<output>.errors.jsonl`` with its row number and the reason.
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from serving.predictor import Predictor
from tasks import InvalidRow

INPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}
OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
Row = tuple[int, dict[str, Any] | InvalidRow]


@dataclass
class BatchSummary:
    """What a batch job did."""

    rows: int
    predicted: int
    errors: int
    seconds: float
    rows_per_second: float
    output: str
    errors_file: str

    def line(self) -> str:
        """One human-readable summary line."""
        return (
            f"{self.rows} rows: {self.predicted} predicted, {self.errors} errors in {self.seconds:.1f}s "
            f"({self.rows_per_second:.0f} rows/s) -> {self.output}"
            + (f", errors in {self.errors_file}" if self.errors else "")
        )


def _format(path: Path, formats: dict[str, str], role: str) -> str:
    try:
        return formats[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"unsupported {role} file {path.name}: use one of {sorted(formats)}") from None


def _read_jsonl(stream: io.BufferedReader) -> Iterator[Row]:
    for number, raw in enumerate(stream, start=1):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            yield number, InvalidRow(f"broken JSON: {error}")
            continue
        yield number, record if isinstance(record, dict) else InvalidRow("expected a JSON object")


def _read_csv(stream: io.BufferedReader) -> Iterator[Row]:
    reader = csv.reader(io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline=""))
    header = next(reader, None) or []
    for number, fields in enumerate(reader, start=1):
        if not fields:
            continue  # a blank line is not a row
        if len(fields) != len(header):
            yield number, InvalidRow(f"row has {len(fields)} fields, header has {len(header)}")
        else:
            yield number, dict(zip(header, fields, strict=True))


def _read_parquet(path: Path, chunk_size: int) -> Iterator[Row]:
    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_size):
        for record in batch.to_pylist():
            number += 1
            yield number, record


def _read_series_csv(stream: io.BufferedReader, columns: list[str]) -> Iterator[Row]:
    """The whole CSV as one series: a single row whose ``history`` holds ``columns`` of every line."""
    reader = csv.DictReader(io.TextIOWrapper(stream, encoding="utf-8-sig", errors="replace", newline=""))
    missing = [c for c in columns if c not in (reader.fieldnames or [])]
    if missing:
        yield 1, InvalidRow(f"series CSV lacks column(s) {missing}")
        return
    history = []
    for line in reader:
        try:
            history.append([float(line[c]) for c in columns])
        except (TypeError, ValueError):
            yield 1, InvalidRow(f"line {reader.line_num}: non-numeric value in {columns}")
            return
    yield 1, {"history": history}


def read_rows(
    path: Path, chunk_size: int, stream: io.BufferedReader | None, series_columns: list[str] | None = None
) -> Iterator[Row]:
    """Yield ``(row number, record or InvalidRow)`` for every row of a JSONL, CSV or Parquet file.

    With ``series_columns``, a CSV is one time series (a line per step) and yields a single row.
    """
    kind = _format(path, INPUT_FORMATS, "input")
    if series_columns is not None:
        if kind != "csv":
            raise ValueError("a series input must be a CSV file with one line per time step")
        return _read_series_csv(stream, series_columns)
    if kind == "parquet":
        return _read_parquet(path, chunk_size)
    return _read_jsonl(stream) if kind == "jsonl" else _read_csv(stream)


class OutputWriter:
    """Writes records as JSONL or Parquet to ``<path>.partial``; ``close`` renames it into place.

    Each record holds ``row``, the kept ``input`` fields and the prediction (or error) fields. JSONL
    lines put the input fields beside the prediction; Parquet keeps them as one JSON text column,
    because input fields vary from row to row and a Parquet file has one fixed schema.
    """

    def __init__(self, path: Path):
        self.path = path
        self.partial = path.with_name(path.name + ".partial")
        self.kind = _format(path, OUTPUT_FORMATS, "output")
        self.stream = self.partial.open("w", encoding="utf-8") if self.kind == "jsonl" else None
        self.parquet: pq.ParquetWriter | None = None

    def write(self, records: list[dict[str, Any]]) -> None:
        """Append records."""
        if not records:
            return
        if self.stream is not None:
            self.stream.writelines(json.dumps(flatten(r), ensure_ascii=False) + "\n" for r in records)
            return
        rows = [{**r, "input": json.dumps(r["input"], ensure_ascii=False)} for r in records]
        table = pa.Table.from_pylist(rows, schema=self.parquet.schema if self.parquet else None)
        if self.parquet is None:
            self.parquet = pq.ParquetWriter(self.partial, table.schema)
        self.parquet.write_table(table)

    def close(self) -> None:
        """Finish the file and move it into place (an empty Parquet output still gets a file)."""
        if self.stream is not None:
            self.stream.close()
        elif self.parquet is None:
            pq.write_table(pa.table({"row": pa.array([], pa.int64())}), self.partial)
        else:
            self.parquet.close()
        os.replace(self.partial, self.path)

    def abort(self) -> None:
        """Close and delete the unfinished file."""
        if self.stream is not None:
            self.stream.close()
        elif self.parquet is not None:
            self.parquet.close()
        self.partial.unlink(missing_ok=True)


def kept_input(record: dict[str, Any]) -> dict[str, Any]:
    """Input fields kept beside the prediction: the scalar ones."""
    return {k: v for k, v in record.items() if isinstance(v, str | int | float | bool) or v is None}


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Input fields beside the prediction; a clashing name (such as ``label``) becomes ``input_<name>``."""
    fields = {k: v for k, v in record.items() if k != "input"}
    inputs = {(f"input_{k}" if k in fields else k): v for k, v in (record.get("input") or {}).items()}
    return {"row": fields.pop("row"), **inputs, **fields}


def run_batch(
    model_dir: Path,
    input_path: Path,
    output_path: Path,
    chunk_size: int = 10_000,
    threads: int | None = None,
    show_progress: bool = True,
    series: bool = False,
    beam_width: int | None = None,
) -> BatchSummary:
    """Predict every row of ``input_path`` with the bundle in ``model_dir``.

    Args:
        model_dir: A model bundle folder (see ``serving.predictor``).
        input_path: JSONL, CSV or Parquet file of input rows.
        output_path: JSONL or Parquet file for the predictions (row number, kept input fields, prediction).
        chunk_size: Rows read, predicted and written at a time; bounds memory.
        threads: onnxruntime intra-op threads (``None``: all available cores).
        show_progress: Draw a progress bar on the terminal.
        series: Read a CSV as one time series (forecasting) and forecast from its last steps.
        beam_width: Translation: beams kept while decoding (1 is greedy), instead of the model's own.

    Returns:
        Counts, timing and the paths written.
    """
    started = time.perf_counter()
    _format(input_path, INPUT_FORMATS, "input")  # fail before anything is opened or written
    _format(output_path, OUTPUT_FORMATS, "output")
    predictor = Predictor(model_dir, threads=threads)
    columns = getattr(predictor.codec, "columns", None) if series else None
    if series and columns is None:
        raise ValueError(f"--series needs a forecasting model; this one serves '{predictor.task.name}'")
    if beam_width is not None and predictor.task.kind != "seq2seq":
        raise ValueError(f"--beam-width needs a translation model; this one serves '{predictor.task.name}'")
    options = {} if beam_width is None else {"beam_width": beam_width}
    errors_path = output_path.with_name(output_path.name + ".errors.jsonl")
    rows = predicted = failed = 0
    progress = Progress(
        TextColumn("[bold]predict"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rows]} rows"),
        disable=not show_progress,
    )
    stream = None if input_path.suffix.lower() == ".parquet" else input_path.open("rb")
    size = pq.ParquetFile(input_path).metadata.num_rows if stream is None else input_path.stat().st_size
    writer, errors = OutputWriter(output_path), OutputWriter(errors_path)
    try:
        with progress:
            bar = progress.add_task("predict", total=size, rows=0)
            chunk: list[Row] = []
            for row in read_rows(input_path, chunk_size, stream, columns):
                chunk.append(row)
                if len(chunk) == chunk_size:
                    good, bad = _predict_chunk(predictor, chunk, writer, errors, options)
                    rows, predicted, failed, chunk = rows + len(chunk), predicted + good, failed + bad, []
                    progress.update(bar, completed=rows if stream is None else stream.tell(), rows=rows)
            good, bad = _predict_chunk(predictor, chunk, writer, errors, options)
            rows, predicted, failed = rows + len(chunk), predicted + good, failed + bad
            progress.update(bar, completed=size, rows=rows)
    except BaseException:  # nothing half-written is left looking like a result
        writer.abort()
        errors.abort()
        raise
    finally:
        if stream is not None:
            stream.close()
    writer.close()
    errors.close()
    if not failed:
        errors_path.unlink()
    seconds = time.perf_counter() - started
    return BatchSummary(
        rows,
        predicted,
        failed,
        seconds,
        rows / seconds if seconds else 0.0,
        str(output_path),
        str(errors_path),
    )


def _predict_chunk(
    predictor: Predictor,
    chunk: list[Row],
    writer: OutputWriter,
    errors: OutputWriter,
    options: dict[str, Any],
) -> tuple[int, int]:
    good, items, error_records = [], [], []
    for number, record in chunk:
        try:
            if isinstance(record, InvalidRow):
                raise record
            items.append(predictor.codec.parse(record))
            good.append((number, record))
        except InvalidRow as reason:
            error_records.append(
                {
                    "row": number,
                    "error": str(reason),
                    "input": kept_input(record) if isinstance(record, dict) else {},
                }
            )
    predictions = predictor.predict_items(items, **options)
    writer.write(
        [
            {"row": number, "input": kept_input(record), **prediction}
            for (number, record), prediction in zip(good, predictions, strict=True)
        ]
    )
    errors.write(error_records)
    return len(good), len(error_records)
