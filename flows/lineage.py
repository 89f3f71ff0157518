"""Data lineage in MLflow: each split as a dataset input, with its real source, size and own digest."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any

from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.dataset_source import DatasetSource
from mlflow.data.dataset_source_registry import get_registered_sources
from mlflow.data.huggingface_dataset import HuggingFaceDataset
from mlflow.data.huggingface_dataset_source import HuggingFaceDatasetSource

from flows.tracker import tracker
from serving.redaction import mask_credentials
from tasks import PreparedData

SPLIT_CONTEXTS = {"train": "training", "validation": "validation", "test": "testing"}
# How tasks describe a source (``tasks.common.sources.first_available``): the first word says what it is.
LOCAL_KINDS = ("files", "file", "data_dir", "text_file", "corpus_dir")


class SplitDataset(HuggingFaceDataset):
    """A prepared split as MLflow sees it: rows and bytes in its profile (MLflow's own leaves them null)."""

    @property
    def profile(self) -> dict[str, Any]:
        """Rows, columns and in-memory size of the split."""
        return {
            "num_rows": self._ds.num_rows,
            "num_columns": self._ds.num_columns,
            "size_in_bytes": self._ds.data.nbytes,
        }


def dataset_source(description: str) -> DatasetSource:
    """The MLflow source a task's description of its data names.

    Args:
        description: ``hub <id>``, ``data_dir <folder>``, ``files <a>, <b>``, ``text_file <path>``, or
            anything else (data an installed package ships, such as ``aeon bundled NATOPS``).

    Returns:
        A Hugging Face source for a Hub id, a local source for files (the first one named), else a code
        source that keeps the description.
    """
    kind, _, rest = description.partition(" ")
    if kind == "hub":
        return HuggingFaceDatasetSource(path=rest.strip())
    if kind in LOCAL_KINDS and rest.strip():
        first = rest.split(", ")[0].strip()
        return _local_source_class()(Path(first).expanduser().resolve().as_uri())
    return CodeDatasetSource(tags={"source": mask_credentials(description)})


def _local_source_class() -> type[DatasetSource]:
    """MLflow's local-file source class (made at import time by MLflow, so it cannot be imported by name)."""
    return next(s for s in get_registered_sources() if s._get_source_type() == "local")


def split_digest(fingerprint: str, split: str, rows: Any) -> str:
    """A digest of one split: the data fingerprint, the split's name and the split's own content hash."""
    content = getattr(rows, "_fingerprint", None) or str(rows.num_rows)
    return hashlib.sha256(f"{fingerprint}:{split}:{content}".encode()).hexdigest()[:16]


def split_datasets(prepared: PreparedData) -> dict[str, SplitDataset]:
    """Each split of the prepared data as an MLflow dataset, keyed by split name."""
    source = dataset_source(prepared.source)
    found = {}
    for split in SPLIT_CONTEXTS:
        rows = prepared.splits[split]
        with warnings.catch_warnings():  # schema inference hints about integer columns, once per split
            warnings.simplefilter("ignore", UserWarning)
            found[split] = SplitDataset(
                rows, source, name=split, digest=split_digest(prepared.fingerprint, split, rows)
            )
    return found


def log_lineage(datasets: dict[str, SplitDataset]) -> None:
    """Log each split (``split_datasets``) as a dataset input of the active run."""
    with warnings.catch_warnings():  # the schema is inferred when logged: MLflow's integer-column hint
        warnings.simplefilter("ignore", UserWarning)
        for split, context in SPLIT_CONTEXTS.items():
            tracker.log_input(datasets[split], context)
