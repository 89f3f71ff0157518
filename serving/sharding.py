"""A batch job's chunks run on a Dask cluster.

By default a ``LocalCluster`` of worker processes; with a scheduler address, an existing cluster.
The model bundle travels to the workers as bytes (broadcast once), so workers need no shared disk
with the client (they do need seqops installed, at the client's version); each worker process
unpacks it once and keeps its predictor. Chunks are submitted a few at a time, so memory stays
bounded however large the input, and results come back in any order: the caller stores them by
chunk index and merges in input order.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from distributed import Client, LocalCluster, as_completed

from serving.chunk_job import predict_chunk
from serving.chunks import RawChunk
from serving.parts import ChunkResult
from serving.predictor import Predictor

_WORKER_PREDICTORS: dict[tuple[str, int | None, str | None], Predictor] = {}


def bundle_archive(directory: Path) -> tuple[str, bytes]:
    """The bundle folder as an in-memory tar, with its SHA-256 (the workers' cache key)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    data = buffer.getvalue()
    return hashlib.sha256(data).hexdigest(), data


def _worker_predictor(digest: str, archive: bytes, threads: int | None, quantize: str | None) -> Predictor:
    key = (digest, threads, quantize)
    if key not in _WORKER_PREDICTORS:
        folder = Path(tempfile.gettempdir()) / f"seqops-bundle-{digest[:16]}"
        if not folder.is_dir():
            # Unpacked beside the target and renamed into place: workers on one machine never see half.
            unpacked = Path(tempfile.mkdtemp(dir=folder.parent, prefix=folder.name + "-"))
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(unpacked, filter="data")
            try:
                unpacked.rename(folder)
            except OSError:  # another worker got there first
                shutil.rmtree(unpacked, ignore_errors=True)
        while len(_WORKER_PREDICTORS) >= 2:  # long-lived workers serve model after model
            _WORKER_PREDICTORS.pop(next(iter(_WORKER_PREDICTORS)))
        _WORKER_PREDICTORS[key] = Predictor(folder, threads=threads, quantize=quantize)
    return _WORKER_PREDICTORS[key]


def _predict_on_worker(
    bundle: tuple[str, bytes],
    chunk: RawChunk,
    output_kind: str,
    options: dict[str, Any],
    series_columns: list[str] | None,
    threads: int | None,
    quantize: str | None,
) -> ChunkResult:
    predictor = _worker_predictor(*bundle, threads, quantize)
    return predict_chunk(predictor, chunk, output_kind, options, series_columns)


class DaskShards:
    """Runs chunks on Dask workers; use as a context manager.

    Args:
        workers: Worker processes of the local cluster (ignored with ``scheduler``).
        scheduler: Address of a running scheduler, e.g. ``tcp://10.0.0.5:8786``.
        threads: onnxruntime threads per worker (default 1: one worker per core).
    """

    def __init__(self, workers: int = 2, scheduler: str | None = None, threads: int | None = None):
        self.workers, self.scheduler, self.threads = workers, scheduler, threads or 1
        self.cluster: LocalCluster | None = None
        self.lanes = 0
        self.client: Client | None = None

    def __enter__(self) -> DaskShards:
        if self.scheduler:
            self.client = Client(self.scheduler)
        else:
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=logging.ERROR,
            )
            try:
                self.client = Client(self.cluster)
            except BaseException:
                self.cluster.close()
                raise
        self.lanes = len(self.client.scheduler_info()["workers"]) * self.threads
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def map(
        self,
        bundle_dir: Path,
        chunks: Iterator[RawChunk],
        output_kind: str,
        options: dict[str, Any],
        series_columns: list[str] | None = None,
        quantize: str | None = None,
    ) -> Iterator[ChunkResult]:
        """Predict every chunk on the cluster; yields results as they finish (any order)."""
        assert self.client is not None, "use DaskShards as a context manager"
        bundle = self.client.scatter(bundle_archive(bundle_dir), broadcast=True)
        job = uuid.uuid4().hex  # keys unique to this job on a shared scheduler
        in_flight = 2 * max(len(self.client.scheduler_info()["workers"]), 1)
        pending = as_completed()
        for chunk in chunks:
            pending.add(
                self.client.submit(
                    _predict_on_worker,
                    bundle,
                    chunk,
                    output_kind,
                    options,
                    series_columns,
                    self.threads,
                    quantize,
                    key=f"seqops-{job}-chunk-{chunk.index}",
                )
            )
            while pending.count() >= in_flight:
                yield next(pending).result()
        for future in pending:
            yield future.result()
