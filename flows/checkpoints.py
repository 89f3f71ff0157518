"""Checkpoint folders a rerun can resume from: one per training definition, locked while in use.

A killed pipeline run leaves Lightning's ``last.ckpt`` in ``<root>/<cell>-<key>``, where the key hashes
everything that defines the training, so running the same training again finds and resumes it. The
folder is deleted once its cell has shipped, so the next scheduled run trains from scratch.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from types import TracebackType
from typing import IO, Any

LOCK_FILE = ".lock"


def checkpoint_key(fingerprint: str, model: dict[str, Any], training: dict[str, Any]) -> str:
    """A short hash of what defines a training: the data fingerprint, network and training settings."""
    text = json.dumps({"data": fingerprint, "model": model, "train": training}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


class CheckpointLease:
    """The checkpoint folder one training uses: the shared, resumable one, or one private to a run.

    Used as a context manager: a clean exit deletes the folder (the training is finished with); an
    exception keeps a shared folder for the next run to resume, but deletes a private one, which no
    run would ever resume. The lock is released either way.

    Attributes:
        path: The folder for Lightning's checkpoints.
        shared: Whether it is the folder a rerun of the same training resumes from.
        reason: Why a private folder is used instead (empty when shared).
    """

    def __init__(self, path: Path, shared: bool, reason: str = "", lock: IO[str] | None = None):
        self.path = path
        self.shared = shared
        self.reason = reason
        self._lock = lock

    def __enter__(self) -> CheckpointLease:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        try:
            if kind is None or not self.shared:
                remove_folder(self.path)
        finally:
            if self._lock is not None:
                self._lock.close()  # closing the descriptor drops the flock
                self._lock = None


def claim_checkpoints(root: Path, name: str, run_id: str) -> CheckpointLease:
    """Lock ``root/name`` for this process, or fall back to a folder private to ``run_id``.

    The lock is ``flock(LOCK_EX | LOCK_NB)`` on ``root/name/.lock``: the kernel drops it when its holder
    dies, so a killed run never leaves the folder locked, while a live run training the same thing
    keeps a second run out (it trains in ``root/name.<run_id>`` and does not resume).

    Args:
        root: Folder of one task's checkpoints.
        name: ``<cell>-<key>``, the same for every run of the same training.
        run_id: Names the private folder (the MLflow run id).
    """
    shared = root / name
    for _ in range(3):
        shared.mkdir(parents=True, exist_ok=True)
        try:
            lock = (shared / LOCK_FILE).open("a")
        except FileNotFoundError:  # a finishing run removed the folder since our mkdir
            continue
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            private = root / f"{name}.{run_id}"
            remove_folder(private)
            private.mkdir(parents=True)
            reason = f"{shared} is locked by another live run training the same thing"
            return CheckpointLease(private, shared=False, reason=reason)
        # A finishing run may have moved the folder away between our open and flock; then the lock
        # we hold guards nothing, and we try again with the folder as it is now.
        try:
            if os.fstat(lock.fileno()).st_ino == (shared / LOCK_FILE).stat().st_ino:
                return CheckpointLease(shared, shared=True, lock=lock)
        except FileNotFoundError:
            pass
        lock.close()
    raise RuntimeError(f"could not lock {shared}: it keeps being removed by other runs")


def remove_folder(path: Path) -> None:
    """Delete a folder; it is first renamed, so no other run can open the lock inside it meanwhile."""
    if not path.exists():
        return
    doomed = path.with_name(f"{path.name}.deleting-{uuid.uuid4().hex}")  # unique: an old one may be left
    path.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)
