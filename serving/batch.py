"""The batch inference job: a file of inputs in, predictions and error records out.

The input is cut into deterministic chunks (``serving.chunks``). Each chunk is parsed, encoded,
predicted and stored as soon as it is done (``serving.parts``), so memory stays flat whatever the
file size, and a job killed at any moment resumes where it stopped when started again with the same
arguments. Chunks run in this process, reading and encoding the next chunk while onnxruntime works
on the current one, or on Dask workers (``serving.sharding``). The output is merged in input order
and renamed into place only when complete; every row that cannot be predicted lands in
``<output>.errors.jsonl`` with its row number and the reason. Everything is checked before anything
is written (input, output path, bundle, options), and one job at a time owns an output
(``serving.ownership``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

from serving.bundle import bundle_digest
from serving.chunk_job import finish_chunk, prefetched, prepare_chunk
from serving.chunks import RawChunk, check_input, input_size, iter_chunks
from serving.errors import JobError
from serving.ownership import OutputLock, check_paths
from serving.parts import ChunkResult, PartStore, errors_path, output_format
from serving.predictor import Predictor
from serving.profile import InputProfile
from serving.report import BatchReport, stage_seconds
from tasks import Task
from tasks.common.hooks import InvalidOptions


def run_batch(
    model_dir: Path,
    input_path: Path,
    output_path: Path,
    chunk_size: int = 10_000,
    threads: int | None = None,
    show_progress: bool = True,
    reader: str | None = None,
    options: dict[str, Any] | None = None,
    quantize: str | None = None,
    workers: int = 1,
    scheduler: str | None = None,
    device: str = "cpu",
) -> BatchReport:
    """Predict every row of ``input_path`` with the bundle in ``model_dir``.

    Args:
        model_dir: A model bundle folder (see ``serving.predictor``).
        input_path: JSONL, CSV or Parquet file of input rows.
        output_path: JSONL or Parquet file for the predictions (row number, kept input fields, prediction).
        chunk_size: Rows read, predicted and written at a time; bounds memory and is the unit of resumption.
        threads: onnxruntime intra-op threads (default: every core; 1 per Dask worker).
        show_progress: Draw a progress bar on the terminal.
        reader: Read the whole input as one row with this reader of the model's task (``Task.readers``).
        options: Inference options of the model's task (``Task.inference_options``), such as a beam width.
        quantize: ``"int8"`` to run the bundle's int8 graphs (only present when they passed the gate).
        workers: Dask worker processes on a local cluster; 1 runs in this process.
        scheduler: Address of a Dask scheduler to run on instead of a local cluster.
        device: ``cpu``, or ``cuda`` (onnxruntime-gpu, in this process: not with Dask workers).

    Returns:
        The job's report: counts, speed, onnxruntime share and the input profile.

    Raises:
        JobError: For a missing or unreadable input, an output that is a folder, unwritable, the input
            itself or being written by another job (``OutputBusy``), or a reader or option the model's task
            does not offer.
        BundleError: Naming the bundle file that is missing, unreadable or mistyped.
    """
    started = time.perf_counter()
    input_kind = check_input(input_path)  # everything is checked before anything is written
    check_paths(input_path, output_path)
    kind = output_format(output_path)
    if device != "cpu" and (workers > 1 or scheduler):
        raise JobError(f"--device {device} runs the job in this process; leave out --workers and --scheduler")
    predictor = Predictor(model_dir, threads=threads, quantize=quantize, device=device)
    check_reader(predictor.task, reader, input_kind)
    try:
        options = predictor.task.check_options(options or {})
    except InvalidOptions as error:
        raise JobError(str(error)) from None
    signature = job_signature(model_dir, input_path, output_path, chunk_size, reader, options, quantize)
    with OutputLock(output_path):
        store = PartStore(output_path, signature)
        finished = store.finished()
        seen = {"chunks": 0, "lanes": predictor.lanes}  # filled in while the chunks stream past
        reading: dict[int, float] = {}
        done_now, writing = 0, 0.0
        try:
            with _progress(show_progress) as progress:
                bar = progress.add_task("predict", total=input_size(input_path), rows=0)

                def pending() -> Iterator[RawChunk]:
                    whole_file = reader is not None
                    clock = time.perf_counter()
                    for chunk in iter_chunks(input_path, chunk_size, whole_file, skip=frozenset(finished)):
                        reading[chunk.index] = time.perf_counter() - clock
                        seen["chunks"] = chunk.index + 1
                        yield chunk
                        clock = time.perf_counter()

                shards = (workers, scheduler, threads)
                for result, position in _results(
                    predictor, model_dir, pending(), kind, options, reader, shards, seen
                ):
                    result.stats["stages"]["read"] = reading.pop(result.index)
                    clock = time.perf_counter()
                    store.save(result)
                    writing += time.perf_counter() - clock
                    done_now += result.stats["rows"]
                    progress.update(bar, completed=position, rows=done_now)
        except BaseException:
            if not store.finished():  # nothing worth resuming
                store.remove()
            raise
        stats = store.finished()
        chunks = max(seen["chunks"], max(stats, default=-1) + 1)
        clock = time.perf_counter()
        store.merge(chunks, errors_path(output_path))
        store.remove()
        writing += time.perf_counter() - clock
    seconds = time.perf_counter() - started
    fresh = [s for index, s in stats.items() if index not in finished]
    profile = InputProfile()
    for chunk_stats in stats.values():
        profile = profile.merge(InputProfile.from_json(chunk_stats["profile"]))
    return BatchReport(
        task=predictor.task.name,
        rows=sum(s["rows"] for s in stats.values()),
        predicted=sum(s["predicted"] for s in stats.values()),
        errors=sum(s["errors"] for s in stats.values()),
        seconds=seconds,
        rows_per_second=sum(s["rows"] for s in fresh) / seconds if seconds else 0.0,
        ort_share=sum(s["ort_seconds"] for s in fresh) / (seconds * max(seen["lanes"], 1))
        if seconds
        else 0.0,
        resumed_chunks=len(finished),
        chunks=chunks,
        lanes=seen["lanes"],
        output=str(output_path),
        errors_file=str(errors_path(output_path)),
        profile=profile.summary(),
        training_profile=predictor.metadata.get("input_profile"),
        stages=stage_seconds([s["stages"] for s in fresh], writing, seconds),
    )


def _results(
    predictor: Predictor,
    model_dir: Path,
    chunks: Iterator[RawChunk],
    kind: str,
    options: dict[str, Any],
    reader: str | None,
    shards: tuple[int, str | None, int | None],
    seen: dict[str, int],
) -> Iterator[tuple[ChunkResult, int]]:
    """Predicted chunks with the input position reached, in this process or on Dask workers.

    On Dask, ``seen["lanes"]`` becomes the cluster's inference lanes (workers × threads each).
    """
    workers, scheduler, threads = shards
    if workers <= 1 and scheduler is None:
        positions: dict[int, int] = {}

        def prepared() -> Iterator[Any]:
            for chunk in chunks:
                positions[chunk.index] = chunk.position
                yield prepare_chunk(predictor, chunk, reader)

        clock = time.perf_counter()
        for ready in prefetched(prepared()):
            waited = time.perf_counter() - clock  # for the next chunk to be read, parsed and encoded
            result = finish_chunk(predictor, ready, kind, options)
            result.stats["stages"]["wait"] = waited
            yield result, positions.pop(ready.index)
            clock = time.perf_counter()
        return
    from serving.sharding import DaskShards  # only sharded jobs start a cluster

    positions = {}

    def tracked() -> Iterator[RawChunk]:
        for chunk in chunks:
            positions[chunk.index] = chunk.position
            yield chunk

    with DaskShards(workers, scheduler, threads) as cluster:
        seen["lanes"] = cluster.lanes
        for result in cluster.map(model_dir, tracked(), kind, options, reader, predictor.quantize):
            yield result, positions.pop(result.index)


def job_signature(
    model_dir: Path,
    input_path: Path,
    output_path: Path,
    chunk_size: int,
    reader: str | None,
    options: dict[str, Any],
    quantize: str | None,
) -> dict[str, Any]:
    """What makes two runs the same job: the input file, the model, and every option that shapes output."""
    stat = input_path.stat()
    return json.loads(
        json.dumps(
            {
                "input": str(input_path.resolve()),
                "input_bytes": stat.st_size,
                "input_modified_ns": stat.st_mtime_ns,
                "output": str(output_path.resolve()),
                "model": bundle_digest(model_dir),  # graphs, int8 graphs, codec assets
                "chunk_size": chunk_size,
                "reader": reader,
                "options": options,
                "quantize": quantize,
            }
        )
    )


def check_reader(task: Task, reader: str | None, input_kind: str) -> None:
    """Refuse a reader the model's task does not offer, or an input format it cannot read.

    Raises:
        JobError: Naming the readers the task offers, or the formats the reader reads.
    """
    if reader is None:
        return
    offered = task.readers.get(reader)
    if offered is None:
        readers = "; ".join(f"{name}: {r.description}" for name, r in task.readers.items()) or "none"
        raise JobError(f"--reader {reader}: the model's task '{task.name}' offers readers: {readers}")
    if input_kind not in offered.formats:
        raise JobError(
            f"--reader {reader} reads {' or '.join(offered.formats)} files ({offered.description})"
        )


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]predict"),
        BarColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[rows]} rows"),
        disable=not show,
    )
