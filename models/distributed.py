"""Data-parallel training on one machine: this process is rank 0, the other ranks are worker processes.

Lightning's own DDP launcher starts the other ranks by re-running the command line, which for a
pipeline would run the whole pipeline once per rank. Here the fit alone is repeated: rank 0 writes
what the fit needs to a private folder, starts ``python -m models.ddp_worker`` once per other rank
with the variables Lightning reads (``LOCAL_RANK`` among them, so Lightning launches nothing itself),
and trains as rank 0 with its callbacks (tracking, progress), which the workers do not run.
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch.distributed
from torch.utils.data import DataLoader, Sampler

# How long a rank waits for the others at a collective: long enough for rank 0's own per-epoch work
# (tracking, samples, gradient profiles), short enough that a rank that died does not hang the run.
WORKER_TIMEOUT = timedelta(minutes=5)
PROCESS_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "NODE_RANK", "LOCAL_RANK")


class DistributedTrainingError(RuntimeError):
    """A data-parallel fit failed in one of its processes; the message holds the worker's last lines."""


class BatchShare(Sampler[list[int]]):
    """One rank's share of every batch another batch sampler draws: examples ``rank``, ``rank + world``...

    Every rank draws the same batches (same seed) and takes its own examples of each, so a step of
    ``world`` ranks sees the batch one process would, and their averaged gradients are its gradient:
    ``batch_size`` means the same with any number of devices, and so do the epochs' step counts.
    """

    def __init__(self, batches: Any, rank: int, world_size: int):
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches:
            # A batch smaller than the world (a bucket's remainder) repeats one example on the idle ranks.
            yield list(batch)[self.rank :: self.world_size] or list(batch)[:1]

    def __len__(self) -> int:
        return len(self.batches)


def shard(loader: DataLoader, rank: int, world_size: int) -> DataLoader:
    """The training loader of one rank: its share of each batch of ``loader``."""
    return DataLoader(
        loader.dataset,
        batch_sampler=BatchShare(loader.batch_sampler, rank, world_size),
        collate_fn=loader.collate_fn,
        num_workers=loader.num_workers,
    )


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now (for rank 0's rendezvous)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ready_file(spec_path: Path, worker_rank: int) -> Path:
    """The file a worker creates once its fit is built and about to join rank 0."""
    return spec_path.with_name(f"rank{worker_rank}.ready")


def rank() -> int:
    """This process's rank in the fit (0 outside data-parallel training)."""
    return int(os.environ.get("LOCAL_RANK", 0))


@contextmanager
def rank_zero(world_size: int) -> Iterator[dict[str, str]]:
    """Make this process rank 0 of ``world_size`` (the variables Lightning reads), undone afterwards.

    Enter it before the Trainer is built: with ``LOCAL_RANK`` set, Lightning launches no processes.

    Yields:
        The variables the other ranks need as well (``worker_processes``).
    """
    variables = {
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": str(free_port()),
        "WORLD_SIZE": str(world_size),
        "NODE_RANK": "0",
    }
    saved = {name: os.environ.get(name) for name in PROCESS_VARIABLES}
    os.environ.update({**variables, "LOCAL_RANK": "0"})
    try:
        yield variables
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


@contextmanager
def worker_processes(spec: Any, variables: dict[str, str]) -> Iterator[None]:
    """Run ranks 1 .. ``WORLD_SIZE - 1`` of a fit while the body trains as rank 0, then stop them.

    Args:
        spec: What ``models.ddp_worker`` needs to build the same fit (picklable).
        variables: What ``rank_zero`` yielded.

    Raises:
        DistributedTrainingError: If a worker failed, with its last log lines.
    """
    world_size = int(variables["WORLD_SIZE"])
    with tempfile.TemporaryDirectory(prefix="seqops-ddp-") as private, ExitStack() as logs:
        folder = Path(private)
        (folder / "spec.pkl").write_bytes(pickle.dumps(spec))
        workers = []
        for worker_rank in range(1, world_size):
            log = logs.enter_context((folder / f"rank{worker_rank}.log").open("w"))
            command = [sys.executable, "-m", "models.ddp_worker", str(folder / "spec.pkl")]
            env = {**os.environ, **variables, "LOCAL_RANK": str(worker_rank)}
            workers.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        failure: BaseException | None = None
        try:
            await_workers(workers, folder / "spec.pkl")
            yield
        except BaseException as error:
            failure = error
        finally:
            codes = [stop(worker, wait=failure is None) for worker in workers]
        failed = [(number, code) for number, code in enumerate(codes, start=1) if code]
        if failed and (failure is None or isinstance(failure, Exception)):
            worker_rank, code = failed[0]
            lines = (folder / f"rank{worker_rank}.log").read_text(errors="replace").strip().splitlines()
            raise DistributedTrainingError(
                f"training rank {worker_rank} of {world_size} exited with status {code}:\n"
                + "\n".join(lines[-15:])
            ) from failure
        if failure is not None:
            raise failure


def await_workers(workers: list[subprocess.Popen], spec_path: Path) -> None:
    """Wait until every worker has built its fit.

    Rank 0 would otherwise wait ``WORKER_TIMEOUT`` at the rendezvous for a worker that failed to start.

    Raises:
        DistributedTrainingError: If a worker exits first (the caller adds its log) or takes too long.
    """
    deadline = time.monotonic() + WORKER_TIMEOUT.total_seconds()
    waiting = dict(enumerate(workers, start=1))
    while waiting:
        for number, worker in list(waiting.items()):
            if ready_file(spec_path, number).exists():
                del waiting[number]
            elif worker.poll() is not None:
                raise DistributedTrainingError(f"training rank {number} exited before training")
        if time.monotonic() > deadline:
            raise DistributedTrainingError(
                f"training ranks {sorted(waiting)} not ready after {WORKER_TIMEOUT}"
            )
        time.sleep(0.05)


def stop(worker: subprocess.Popen, wait: bool) -> int | None:
    """A worker's own exit status, or ``None`` when it had to be stopped.

    After a fit that ended well the worker is given ``WORKER_TIMEOUT`` to finish; after a failure it is
    stopped at once unless it has already exited (its status then says why the fit failed).
    """
    try:
        return worker.wait(timeout=WORKER_TIMEOUT.total_seconds() if wait else 1)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
        return None
