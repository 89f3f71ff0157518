"""Readers for the places a task's data can come from: local files, the Hugging Face Hub, aeon."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tasks.common.base import datasets
from tasks.common.errors import DataSourceError

T = TypeVar("T")
RawSplit = tuple[list[np.ndarray], np.ndarray]  # sequences (steps, channels) and their raw labels
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


def read_uea_file(path: Path) -> RawSplit:
    """Read a UEA/UCR ``.arff`` or ``.ts`` file into ``(steps, channels)`` sequences and raw labels."""
    from aeon.datasets import load_from_arff_file, load_from_ts_file

    if not path.is_file():
        raise DataSourceError(f"data file not found: {path}")
    readers = {".arff": load_from_arff_file, ".ts": load_from_ts_file}
    if path.suffix.lower() not in readers:
        raise DataSourceError(f"unsupported file {path}: use .arff or .ts (UEA multivariate format)")
    try:
        collection, labels = readers[path.suffix.lower()](str(path))
    except Exception as error:  # aeon's parsers raise assorted types on malformed files
        raise DataSourceError(f"could not parse {path}: {type(error).__name__}: {error}") from error
    return as_sequences(collection), np.asarray(labels).astype(str)


def as_sequences(collection: Any) -> list[np.ndarray]:
    """Cases of an aeon collection (``(channels, steps)`` each) as time-major ``(steps, channels)`` arrays."""
    return [np.asarray(case, dtype=np.float32).T for case in collection]


def load_with_aeon(name: str, extract_path: Path | None = None) -> dict[str, RawSplit]:
    """Train and test splits of a UEA/UCR data set through aeon (bundled, cached or downloaded)."""
    from aeon.datasets import load_classification

    splits = {}
    for split in ("train", "test"):
        try:
            collection, labels = load_classification(
                name, split=split, extract_path=str(extract_path) if extract_path else None
            )
        except Exception as error:  # offline, unknown name, or a broken download
            raise DataSourceError(
                f"aeon could not load '{name}' ({type(error).__name__}: {error}). Alternatives: put "
                f"{name}_TRAIN/_TEST .arff or .ts files under data_dir/{name.lower()}/, or set train_file "
                "and test_file"
            ) from error
        splits[split] = as_sequences(collection), np.asarray(labels).astype(str)
    return splits


def aeon_bundled() -> set[str]:
    """Names of the data sets that ship inside the aeon package (no network needed)."""
    from aeon.datasets.dataset_collections import get_downloaded_tsc_tsr_datasets

    return set(get_downloaded_tsc_tsr_datasets())
