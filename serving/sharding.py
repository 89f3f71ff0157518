"""A batch job's chunks run on a Dask cluster.

By default a ``LocalCluster`` of worker processes; with a scheduler address, an existing cluster.
The model bundle travels to the workers as bytes (broadcast once), so workers need no shared disk
with the client (they do need seqops installed, at the client's version). Each worker process
unpacks it once per job into a private folder (``mkdtemp``: a fresh name, mode 0700), checks every
file against the client's digest before serving it, and removes the folder when the job ends, also
after a failure: nothing is ever taken from a shared temporary folder by its name. Chunks are
submitted a few at a time, so memory stays bounded however large the input, and results come back
in any order: the caller stores them by chunk index and merges in input order.
"""

from __future__ import annotations

import atexit
import io
import logging
import shutil
import tarfile
import tempfile
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dask
from distributed import Client, Future, LocalCluster, as_completed

from serving.bundle import bundle_digest
from serving.chunk_job import predict_chunk
from serving.chunks import RawChunk
from serving.errors import JobError
from serving.parts import ChunkResult
from serving.predictor import Predictor
from tasks import BundleError

# In each worker process: the private bundle folder and predictor of every job it is serving.
_WORKER_JOBS: dict[str, tuple[Path, Predictor]] = {}
_RELEASED_JOBS: deque[str] = deque(maxlen=10_000)  # recent ones: a long-lived worker serves many jobs
_WORKER_LOCK = threading.Lock()
log = logging.getLogger("seqops.sharding")


def bundle_archive(directory: Path) -> tuple[str, bytes]:
    """The bundle folder as an in-memory tar, with the digest of its files (``bundle_digest``)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return bundle_digest(directory), buffer.getvalue()


def _worker_predictor(
    job: str, digest: str, archive: bytes, threads: int | None, quantize: str | None
) -> Predictor:
    """This worker's predictor for ``job``, unpacked into a private folder on first use and verified.

    A worker running several tasks at once unpacks the bundle once (the others wait for it), and a task
    that starts after its job was released recreates nothing.
    """
    with _WORKER_LOCK:
        if job in _RELEASED_JOBS:
            raise RuntimeError(f"job {job} has ended on this worker")
        if job not in _WORKER_JOBS:
            if not _WORKER_JOBS and not _RELEASED_JOBS:  # first job of this process
                atexit.register(_release_all)
            folder = Path(tempfile.mkdtemp(prefix="seqops-bundle-"))  # a fresh name, readable by us alone
            try:
                with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                    tar.extractall(folder, filter="data")
                if bundle_digest(folder) != digest:
                    raise BundleError("the model bundle unpacked on a Dask worker differs from the one sent")
                _WORKER_JOBS[job] = (folder, Predictor(folder, threads=threads, quantize=quantize))
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)
                raise
        return _WORKER_JOBS[job][1]


def _release_job(job: str) -> None:
    """Forget a job on this worker and delete its bundle folder (run on every worker when a job ends)."""
    with _WORKER_LOCK:
        _RELEASED_JOBS.append(job)
        folder, _ = _WORKER_JOBS.pop(job, (None, None))
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def _release_all() -> None:
    for job in list(_WORKER_JOBS):
        _release_job(job)


def _predict_on_worker(
    job: str,
    bundle: tuple[str, bytes],
    chunk: RawChunk,
    output_kind: str,
    options: dict[str, Any],
    reader: str | None,
    threads: int | None,
    quantize: str | None,
) -> ChunkResult:
    predictor = _worker_predictor(job, *bundle, threads, quantize)
    return predict_chunk(predictor, chunk, output_kind, options, reader)


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
        self.scratch: Path | None = None
        self.lanes = 0
        self.client: Client | None = None
        self.jobs: list[str] = []
        self.futures: set[Future] = set()  # in flight: holding a finished one would keep its result alive

    def __enter__(self) -> DaskShards:
        try:
            if self.scheduler:
                try:
                    self.client = Client(self.scheduler, timeout=30)
                except OSError as error:  # refused, unknown host, or no answer within the timeout
                    raise JobError(f"cannot reach the Dask scheduler at {self.scheduler}: {error}") from None
            else:
                self.scratch = Path(tempfile.mkdtemp(prefix="seqops-dask-"))  # not dask's shared name
                with dask.config.set({"temporary-directory": str(self.scratch)}):
                    self.cluster = LocalCluster(
                        n_workers=self.workers,
                        threads_per_worker=1,
                        processes=True,
                        dashboard_address=None,
                        silence_logs=logging.ERROR,
                    )
                self.client = Client(self.cluster)
        except BaseException:
            self.__exit__()
            raise
        self.lanes = len(self.client.scheduler_info()["workers"]) * self.threads
        return self

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            try:  # a failed job's chunks are dropped, and every worker deletes the jobs' bundle folders
                self.client.cancel(list(self.futures))
                for job in self.jobs:
                    self.client.run(_release_job, job)
            except Exception as error:  # the cluster may be what failed; never hide the job's own error
                log.warning("could not release the job's bundle folders on the Dask workers: %s", error)
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)

    def map(
        self,
        bundle_dir: Path,
        chunks: Iterator[RawChunk],
        output_kind: str,
        options: dict[str, Any],
        reader: str | None = None,
        quantize: str | None = None,
    ) -> Iterator[ChunkResult]:
        """Predict every chunk on the cluster; yields results as they finish (any order)."""
        assert self.client is not None, "use DaskShards as a context manager"
        bundle = self.client.scatter(bundle_archive(bundle_dir), broadcast=True)
        job = uuid.uuid4().hex  # keys unique to this job on a shared scheduler
        self.jobs.append(job)
        in_flight = 2 * max(len(self.client.scheduler_info()["workers"]), 1)
        pending = as_completed()
        for chunk in chunks:
            future = self.client.submit(
                _predict_on_worker,
                job,
                bundle,
                chunk,
                output_kind,
                options,
                reader,
                self.threads,
                quantize,
                key=f"seqops-{job}-chunk-{chunk.index}",
            )
            self.futures.add(future)
            pending.add(future)
            while pending.count() >= in_flight:
                yield self._collect(next(pending))
        for future in pending:
            yield self._collect(future)

    def _collect(self, future: Future) -> ChunkResult:
        self.futures.discard(future)
        return future.result()
