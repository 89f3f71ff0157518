"""Why a batch job cannot start or go on: each a ``SeqopsError``, shown as one line (exit status 2)."""

from __future__ import annotations

from tasks import SeqopsError


class JobError(SeqopsError, ValueError):
    """A bad invocation, input file or output path; the message says which and what to do."""


class OutputBusy(JobError):
    """Another job is writing the same output; the message names the process."""
