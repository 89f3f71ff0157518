"""Readers for the places a task's data can come from: local files and the Hugging Face Hub."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import datasets

from tasks.base import DataSourceError

T = TypeVar("T")
TABLE_BUILDERS = {".csv": "csv", ".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def read_table(path: Path) -> datasets.Dataset:
    """Read a CSV, JSON Lines or Parquet file into a ``datasets.Dataset``.

    Args:
        path: The file to read; its suffix picks the reader.

    Returns:
        The rows as a dataset, one column per field.

    Raises:
        DataSourceError: If the file is missing or its format is not supported.
    """
    if not path.is_file():
        raise DataSourceError(f"data file not found: {path}")
    builder = TABLE_BUILDERS.get(path.suffix.lower())
    if builder is None:
        raise DataSourceError(f"unsupported data file {path}: use one of {sorted(TABLE_BUILDERS)}")
    return datasets.load_dataset(builder, data_files=str(path), split="train")


def load_from_hub(dataset_id: str, alternatives: str) -> datasets.DatasetDict:
    """Load a data set from the Hugging Face Hub, failing fast and clearly when offline.

    Args:
        dataset_id: Hub repository id, such as ``stanfordnlp/sst2``.
        alternatives: Text naming the local sources a user can configure instead.

    Returns:
        The data set's splits.

    Raises:
        DataSourceError: If the Hub cannot be reached or the data set cannot be read.
    """
    # Without these, an unreachable Hub means minutes of silent retries.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    try:
        return datasets.load_dataset(dataset_id)
    except Exception as error:  # the hub client raises many unrelated types when offline
        raise DataSourceError(
            f"could not load '{dataset_id}' from the Hugging Face Hub ({type(error).__name__}: {error}). "
            f"Alternatives: {alternatives}"
        ) from error


def first_available(loaders: list[tuple[str, Callable[[], T | None]]]) -> tuple[str, T]:
    """Return the first configured data source, in order.

    A loader returns ``None`` when its source is not configured (try the next one). A source that is
    configured but cannot be read raises at once: silently training on other data would be worse.

    Args:
        loaders: ``(description, loader)`` pairs.

    Returns:
        The description of the source used and what its loader returned.

    Raises:
        DataSourceError: From the first configured source that fails, or naming every source when none
            is configured.
    """
    for description, loader in loaders:
        try:
            data = loader()
        except DataSourceError as error:
            raise DataSourceError(f"{description}: {error}") from error
        if data is not None:
            return description, data
    raise DataSourceError("no data source is configured; tried: " + "; ".join(d for d, _ in loaders))
