"""Predicting one chunk, in two stages that can overlap from one chunk to the next.

``prepare_chunk`` parses rows, encodes length-sorted batches and profiles the inputs; ``finish_chunk``
runs the graphs, decodes and serialises the records. The batch job prepares chunk ``k + 1`` on a
background thread while onnxruntime (which releases the GIL) works on chunk ``k``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from serving.chunks import RawChunk
from serving.parts import ChunkResult, kept_input, serialise
from serving.predictor import Batch, Predictor
from serving.profile import InputProfile
from serving.records import chunk_rows
from tasks import InvalidRow

T = TypeVar("T")


@dataclass
class PreparedChunk:
    """A chunk parsed and encoded, ready for the model.

    Attributes:
        index: The chunk's position in the input.
        rows: Rows read (valid or not).
        good: Row number and kept input fields of each valid row, in input order.
        errors: Error records of the invalid rows.
        batches: Encoded batches of the valid rows' items, sorted by length.
        profile: Statistics of the encoded inputs.
        stages: Seconds spent parsing rows (``parse``) and encoding them (``encode``).
    """

    index: int
    rows: int
    good: list[tuple[int, dict[str, Any]]]
    errors: list[dict[str, Any]]
    batches: list[Batch]
    profile: InputProfile
    stages: dict[str, float]


def prepare_chunk(predictor: Predictor, chunk: RawChunk, reader: str | None = None) -> PreparedChunk:
    """Parse a chunk's rows, set the invalid ones aside with their reason, and encode the rest.

    Args:
        predictor: The onnxruntime predictor.
        chunk: The raw chunk.
        reader: The task's whole-file reader that reads it (``seqops predict --reader``), if any.
    """
    started = time.perf_counter()
    whole_file = partial(predictor.task.readers[reader].read, codec=predictor.codec) if reader else None
    rows = chunk_rows(chunk, whole_file)
    good, items, errors = [], [], []
    for number, record in rows:
        try:
            if isinstance(record, InvalidRow):
                raise record
            items.append(predictor.codec.parse(record))
            good.append((number, kept_input(record)))
        except InvalidRow as reason:
            kept = kept_input(record) if isinstance(record, dict) else {}
            errors.append({"row": number, "error": str(reason), "input": kept})
    parsed = time.perf_counter()
    batches = predictor.encode_batches(items)
    profile = InputProfile()
    for _, feeds in batches:
        profile = profile.merge(InputProfile.of_feeds(feeds, predictor.codec.unknown_id))
    stages = {"parse": parsed - started, "encode": time.perf_counter() - parsed}
    return PreparedChunk(chunk.index, len(rows), good, errors, batches, profile, stages)


def finish_chunk(
    predictor: Predictor, prepared: PreparedChunk, output_kind: str, options: dict[str, Any]
) -> ChunkResult:
    """Run the model on a prepared chunk and serialise predictions and errors.

    Args:
        predictor: The onnxruntime predictor.
        prepared: What ``prepare_chunk`` returned.
        output_kind: ``jsonl`` or ``parquet``.
        options: Inference options for the codec (such as ``beam_width``).
    """
    started, ort_before = time.perf_counter(), predictor.ort_seconds
    predictions = predictor.predict_batches(prepared.batches, len(prepared.good), **options)
    records, failed = [], []
    for (number, kept), prediction in zip(prepared.good, predictions, strict=True):
        if isinstance(prediction, InvalidRow):  # the model's output was not finite
            failed.append({"row": number, "error": str(prediction), "input": kept})
        else:
            records.append({"row": number, "input": kept, **prediction})
    errors = sorted(prepared.errors + failed, key=lambda error: error["row"]) if failed else prepared.errors
    predicted = time.perf_counter()
    output, error_output = serialise(records, output_kind), serialise(errors, "jsonl")
    ort_seconds = predictor.ort_seconds - ort_before
    in_graphs = ort_seconds / predictor.lanes  # the lanes run batches side by side
    stages = prepared.stages | {
        "onnxruntime": in_graphs,
        "decode": max(predicted - started - in_graphs, 0.0),  # batching, the codec's decoding, records
        "serialise": time.perf_counter() - predicted,
    }
    stats = {
        "rows": prepared.rows,
        "predicted": len(records),
        "errors": len(errors),
        "ort_seconds": ort_seconds,
        "seconds": sum(stages.values()),
        "stages": stages,
        "profile": prepared.profile.to_json(),
    }
    return ChunkResult(prepared.index, output, error_output, stats)


def predict_chunk(
    predictor: Predictor,
    chunk: RawChunk,
    output_kind: str,
    options: dict[str, Any],
    reader: str | None = None,
) -> ChunkResult:
    """Both stages at once (what a Dask worker runs)."""
    return finish_chunk(predictor, prepare_chunk(predictor, chunk, reader), output_kind, options)


def prefetched(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate ``items`` on a background thread, up to ``depth`` ahead of the consumer.

    onnxruntime releases the GIL while it runs, so reading and encoding the next chunk proceeds
    while the current one is predicted. An error in the producer is raised in the consumer.
    """
    buffer: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():  # the consumer may have stopped listening
            try:
                buffer.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as error:  # handed to the consumer, which re-raises it
            put(("error", error))

    thread = threading.Thread(target=produce, name="seqops-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = buffer.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
