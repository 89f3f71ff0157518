"""Finished chunks kept on disk beside the output, and merged into it in input order at the end.

``<output>.parts/`` holds a manifest (what job this is), and per finished chunk its predictions,
its error records and a ``.done.json`` marker written last. Every file is written under a temporary
name and renamed, so a job killed at any instant leaves only whole chunks behind; started again
with the same arguments it skips them, and the merge gives the same bytes as an uninterrupted run.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from serving.chunks import file_format

OUTPUT_FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".parquet": "parquet"}
JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
ERRORS_SUFFIX = ".errors.jsonl"
SCALARS = (str, int, float, bool)  # a tuple: isinstance with a union type is several times slower


@dataclass
class ChunkResult:
    """What predicting one chunk produced.

    Attributes:
        index: The chunk's position in the input.
        output: Prediction records, serialised as JSONL or Parquet bytes (``b""`` when none).
        errors: Error records as JSONL bytes.
        stats: ``rows``, ``predicted``, ``errors``, ``ort_seconds``, ``seconds`` and the input ``profile``.
    """

    index: int
    output: bytes
    errors: bytes
    stats: dict[str, Any] = field(default_factory=dict)


def output_format(path: Path) -> str:
    """The output kind (``jsonl`` or ``parquet``) from the file suffix."""
    return file_format(path, OUTPUT_FORMATS, "output")


def errors_path(output: Path) -> Path:
    """Where a job writes the error records of its output's rows."""
    return output.with_name(output.name + ERRORS_SUFFIX)


def kept_input(record: dict[str, Any]) -> dict[str, Any]:
    """Input fields kept beside the prediction: the scalar ones."""
    return {k: v for k, v in record.items() if v is None or isinstance(v, SCALARS)}


def flatten(record: dict[str, Any]) -> dict[str, Any]:
    """Input fields beside the prediction; a clashing name (such as ``label``) becomes ``input_<name>``."""
    inputs = {(f"input_{k}" if k in record else k): v for k, v in (record.get("input") or {}).items()}
    flat = {"row": record["row"], **inputs, **record}
    del flat["input"]
    return flat


def serialise(records: list[dict[str, Any]], kind: str) -> bytes:
    """Records (``row``, ``input``, prediction or error fields) as JSONL or Parquet bytes.

    JSONL lines put the input fields beside the prediction; Parquet keeps them as one JSON text
    column, because input fields vary from row to row and a Parquet file has one fixed schema.
    """
    if not records:
        return b""
    if kind == "jsonl":
        return b"".join(orjson.dumps(flatten(r), option=JSON_OPTIONS) for r in records)
    rows = [{**r, "input": orjson.dumps(r["input"]).decode()} for r in records]
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buffer)
    return buffer.getvalue()


class _Replacing:
    """A stream to a new file that replaces ``target`` once the block completes (removed if it fails).

    The file is created beside ``target`` under a fresh name, exclusively and never through a symbolic
    link, so nothing planted in a shared folder can redirect what the job writes.
    """

    def __init__(self, target: Path):
        self.target = target
        self.partial = target.with_name(f"{target.name}.{uuid.uuid4().hex[:12]}.partial")

    def __enter__(self) -> BinaryIO:
        descriptor = os.open(self.partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        self._stream = os.fdopen(descriptor, "wb")
        return self._stream

    def __exit__(self, failure: type[BaseException] | None, *details: object) -> None:
        try:
            self._stream.close()
            if failure is None:
                os.replace(self.partial, self.target)
        finally:
            self.partial.unlink(missing_ok=True)  # already gone once it has replaced the target


def _write_atomically(path: Path, data: bytes) -> None:
    with _Replacing(path) as stream:
        stream.write(data)


def _read_json(path: Path) -> Any:
    """A JSON file this job's store wrote, or ``None`` when it is missing or damaged."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


class PartStore:
    """The finished chunks of one batch job (see the module docstring)."""

    def __init__(self, output: Path, signature: dict[str, Any]):
        self.output = output
        self.folder = output.with_name(output.name + ".parts")
        self.tombstone = output.with_name(output.name + ".parts.removed")
        for stale in output.parent.glob(glob.escape(output.name) + ".*.partial"):  # a merge a kill cut
            stale.unlink()
        _remove_tree(self.tombstone)  # a removal a kill interrupted
        manifest = self.folder / "manifest.json"
        self.resumed = not self.folder.is_symlink() and _read_json(manifest) == signature
        if not self.resumed:  # another job's leftovers (different input, model or options) are not reused
            _remove_tree(self.folder)
            self.folder.mkdir(parents=True)
            _write_atomically(manifest, json.dumps(signature, indent=2).encode())

    def _path(self, index: int, suffix: str) -> Path:
        return self.folder / f"{index:07d}.{suffix}"

    def finished(self) -> dict[int, dict[str, Any]]:
        """Stats of every chunk already finished, by chunk index."""
        finished = {}
        for marker in self.folder.glob("*.done.json"):
            stem = marker.name.split(".")[0]
            stats = _read_json(marker) if stem.isdigit() else None  # a damaged marker: redo the chunk
            written = stem.isdigit() and all(self._path(int(stem), p).is_file() for p in ("out", "errors"))
            if isinstance(stats, dict) and written:
                finished[int(stem)] = stats
        return finished

    def save(self, result: ChunkResult) -> None:
        """Store a chunk's outputs, then its marker: a chunk counts as done only once all are in place."""
        _write_atomically(self._path(result.index, "out"), result.output)
        _write_atomically(self._path(result.index, "errors"), result.errors)
        _write_atomically(self._path(result.index, "done.json"), json.dumps(result.stats).encode())

    def merge(self, chunks: int, errors_path: Path) -> int:
        """Join the parts in input order into the output (and errors) file; returns the error-row count.

        Raises:
            RuntimeError: If a chunk is missing (the job did not finish).
        """
        missing = sorted(set(range(chunks)) - set(self.finished()))
        if missing:
            raise RuntimeError(f"cannot merge: chunks {missing[:5]} of {chunks} are not finished")
        error_parts = [self._path(i, "errors") for i in range(chunks)]
        error_count = sum(part.read_bytes().count(b"\n") for part in error_parts)
        if error_count:  # the errors file first: an output in place means everything is
            _concatenate(error_parts, errors_path)
        else:
            errors_path.unlink(missing_ok=True)
        if output_format(self.output) == "jsonl":
            _concatenate([self._path(i, "out") for i in range(chunks)], self.output)
        else:
            _merge_parquet([self._path(i, "out") for i in range(chunks)], self.output)
        return error_count

    def remove(self) -> None:
        """Delete the parts once merged (renamed away first, so a kill mid-way leaves no half folder)."""
        if self.folder.is_dir() and not self.folder.is_symlink():
            self.folder.rename(self.tombstone)
        _remove_tree(self.tombstone)


def _remove_tree(folder: Path) -> None:
    """Delete a folder, or only the link if a symbolic link stands in its place."""
    if folder.is_symlink():
        folder.unlink()
    else:
        shutil.rmtree(folder, ignore_errors=True)


def _concatenate(parts: list[Path], target: Path) -> None:
    with _Replacing(target) as sink:
        for part in parts:
            with part.open("rb") as source:
                shutil.copyfileobj(source, sink)


def _merge_parquet(parts: list[Path], target: Path) -> None:
    """One Parquet file from the parts, their schemas unified (a column all null in one chunk is fine)."""
    filled = [part for part in parts if part.stat().st_size]
    with _Replacing(target) as sink:
        if not filled:
            pq.write_table(pa.table({"row": pa.array([], pa.int64())}), sink)
            return
        schema = pa.unify_schemas([pq.read_schema(part) for part in filled], promote_options="permissive")
        with pq.ParquetWriter(sink, schema) as writer:
            for part in filled:
                table = pq.read_table(part)
                for name in schema.names:
                    if name not in table.column_names:
                        table = table.append_column(name, pa.nulls(len(table), schema.field(name).type))
                writer.write_table(table.select(schema.names).cast(schema))
