"""Who may write a batch job's output: one job at a time, never over its own input, only where it can.

``check_paths`` refuses, before anything is opened, an output that is a folder, lies under a file, or
is the input itself (however named: another path, a symbolic or hard link). ``OutputLock`` then owns
the output for the job's lifetime with an exclusive ``flock`` on ``<output>.lock``; a second job on
the same output stops at once, naming the process that holds it. The lock file is also the first
thing a job writes, so an output folder that cannot be written is found before any work is done.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
import stat
import time
from pathlib import Path

from serving.errors import JobError, OutputBusy
from serving.parts import ERRORS_SUFFIX, errors_path, output_format


def check_paths(input_path: Path, output_path: Path) -> None:
    """Refuse an output the job could not or must not write.

    Raises:
        JobError: For an unsupported suffix, an output that is a folder or lies under a file, and an
            output (or its errors file) that is the input.
        OutputBusy: If another job is writing the output now (checked again when the job locks it).
    """
    if output_path.is_dir():
        example = output_path / "predictions.jsonl"
        raise JobError(f"the output {output_path} is a folder; give a file path such as {example}")
    output_format(output_path)
    ancestor = next(folder for folder in output_path.absolute().parents if folder.exists())
    if not ancestor.is_dir():
        raise JobError(f"cannot write the output {output_path}: {ancestor} is a file, not a folder")
    if output_path.name.endswith(ERRORS_SUFFIX):
        raise JobError(f"output names ending in {ERRORS_SUFFIX} are kept for error records: {output_path}")
    for target in (output_path, errors_path(output_path)):
        if same_file(input_path, target):
            raise JobError(f"the output {target} is the input file {input_path}; choose another --output")
    OutputLock(output_path).check_free()


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file: equal once resolved, or one inode (hard links)."""
    if first.resolve() == second.resolve():
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:  # one of them does not exist (yet)
        return False


class OutputLock:
    """Exclusive ownership of an output for as long as the ``with`` block runs.

    Entering creates the output's missing parent folders and ``<output>.lock``, and locks it; leaving
    removes the lock file and any folder it created that stayed empty. A killed job's lock is released
    by the kernel, so it never blocks the job that resumes it.

    Raises:
        OutputBusy: If another job holds the output.
        JobError: If the output's folder cannot be created or written.
    """

    def __init__(self, output: Path):
        self.output = output
        self.path = output.with_name(output.name + ".lock")
        self.created: list[Path] = []
        self.descriptor: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            self._make_parents()
            self.descriptor = self._acquire()
        except BaseException:
            self._remove_created()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.descriptor is not None:
            self.path.unlink(missing_ok=True)  # still locked: a job waiting on this file sees it go
            os.close(self.descriptor)
            self.descriptor = None
        self._remove_created()

    def _make_parents(self) -> None:
        missing = [folder for folder in self.output.absolute().parents if not folder.exists()]
        for folder in reversed(missing):
            try:
                folder.mkdir()
            except FileExistsError:
                continue
            except OSError as error:
                raise JobError(f"cannot create the output folder {folder}: {error.strerror}") from None
            self.created.append(folder)

    def check_free(self) -> None:
        """Refuse at once an output another job holds (before a model is loaded for nothing).

        Raises:
            OutputBusy: Naming the process that holds it.
        """
        try:
            descriptor = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:  # no lock file, or none we could use: locking will tell
            return
        try:
            self._lock(descriptor)
            fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)

    def _lock(self, descriptor: int) -> None:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip() or "a process"
            raise OutputBusy(
                f"{self.output} is being written by another seqops job ({holder}); "
                "wait for it to finish or choose another --output"
            ) from None

    def _acquire(self) -> int:
        while True:
            try:  # never through a symbolic link: a planted one could point at any file we may write
                descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
            except OSError as error:
                reason = "it is a symbolic link" if error.errno == errno.ELOOP else error.strerror
                raise JobError(f"cannot write the output {self.output}: {self.path.name}: {reason}") from None
            try:
                if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                    raise JobError(f"cannot write the output {self.output}: {self.path} is not a file")
                self._lock(descriptor)
            except BaseException:
                os.close(descriptor)
                raise
            if self._still_named(descriptor):
                break
            os.close(descriptor)  # its owner removed it after we opened it: lock the file now there
        owner = f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, owner.encode(), 0)
        return descriptor

    def _still_named(self, descriptor: int) -> bool:
        try:
            named = os.stat(self.path)
        except FileNotFoundError:
            return False
        opened = os.fstat(descriptor)
        return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)

    def _remove_created(self) -> None:
        for folder in reversed(self.created):
            try:
                folder.rmdir()
            except OSError:  # the job wrote into it: keep it
                break
        self.created = []
