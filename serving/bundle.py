"""A model bundle on disk: how it is written, found, fingerprinted and checked before it is served.

A bundle is a folder holding the ONNX graphs the task's codec names (``model.onnx``, or several such
as an encoder and a decoder step), ``bundle.json`` (task name and metadata)
and the codec's assets (tokenizers, label names, scalers). It is what gets logged to MLflow and served.
Loading one checks every file the codec needs; a missing, truncated or corrupt one is a
``BundleError`` naming it, never a traceback from deep inside a library.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from tasks import BundleError, Codec, PluginError, Task, get_task, task_names
from tasks.common.assets import read_asset

METADATA_FILE = "bundle.json"
INT8_DIR = "int8"  # a bundle's quantised graphs, present only when they passed the accuracy gate
# MLflow errors that say the model is not there; anything else (an outage) is the caller's to retry.
MISSING_MODEL_CODES = {"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"}


class Int8Decision(BaseModel):
    """The int8 accuracy gate's verdict, as ``bundle.json`` stores it (see ``serving.quantize``)."""

    model_config = ConfigDict(extra="allow")

    accepted: bool
    reason: str


class BundleMetadata(BaseModel):
    """What ``bundle.json`` must hold; the pipeline adds more (cell, run id, metrics), kept as they are.

    Attributes:
        task: The registered task whose codec reads the bundle.
        int8: The int8 gate's decision, when the bundle was quantised.
        input_profile: Statistics of the training inputs, compared with served inputs in job reports.
    """

    model_config = ConfigDict(extra="allow")

    task: str
    int8: Int8Decision | None = None
    input_profile: dict[str, float] | None = None


def read_metadata(directory: Path) -> BundleMetadata:
    """A bundle's ``bundle.json``, typed.

    Raises:
        BundleError: Naming the file when it is missing, not JSON, mistyped or names an unknown task.
    """
    metadata = read_asset(directory, METADATA_FILE, BundleMetadata)
    try:
        get_task(metadata.task)
    except PluginError as error:
        raise BundleError(
            f"{Path(directory) / METADATA_FILE}: task '{metadata.task}' is not installed here; "
            f"installed tasks: {task_names()}"
        ) from error
    return metadata


def load_codec(directory: Path, task: Task) -> Codec:
    """The task's codec from the bundle's assets.

    Raises:
        BundleError: Naming the file at fault (the built-in codecs name it themselves).
    """
    try:
        return task.load_codec(directory)
    except BundleError:
        raise
    except Exception as error:  # a user's codec may fail in any way; it is still a bad bundle
        raise BundleError(f"{directory}: the {task.name} codec could not load its assets ({error})") from None


def graph_files(directory: Path, codec: Codec, quantize: str | None = None) -> dict[str, Path]:
    """The ONNX file of each graph the codec runs (the int8 ones with ``quantize``).

    Raises:
        BundleError: Naming the first graph file that is missing.
    """
    folder = Path(directory) / INT8_DIR if quantize else Path(directory)
    files = {graph: folder / f"{graph}.onnx" for graph in codec.graphs}
    for graph, path in files.items():
        if not path.is_file():
            state = "is not a file" if path.exists() else "is missing"
            raise BundleError(f"{path} {state}: the '{graph}' graph this model's codec runs")
    return files


def save_bundle(
    directory: Path, task_name: str, codec: Codec, graphs_dir: Path, metadata: dict[str, Any] | None = None
) -> Path:
    """Write a servable bundle: the ONNX graphs, the codec assets and ``bundle.json``.

    Args:
        directory: Target folder (created).
        task_name: Registered task name, used to load the codec back.
        codec: The task codec fitted on the training data.
        graphs_dir: Folder holding the exported ``<graph>.onnx`` files the codec names.
        metadata: Extra JSON-able facts (cell, metrics...) stored in ``bundle.json``.

    Returns:
        ``directory``.

    Raises:
        FileNotFoundError: If a graph the codec needs was not exported.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for graph in codec.graphs:
        shutil.copyfile(graphs_dir / f"{graph}.onnx", directory / f"{graph}.onnx")
    codec.save(directory)
    (directory / METADATA_FILE).write_text(json.dumps({"task": task_name, **(metadata or {})}, indent=2))
    return directory


def update_metadata(directory: Path, **fields: Any) -> None:
    """Add or replace fields of a bundle's ``bundle.json``."""
    path = Path(directory) / METADATA_FILE
    path.write_text(json.dumps({**json.loads(path.read_text()), **fields}, indent=2))


def bundle_digest(directory: Path) -> str:
    """SHA-256 of every file of a bundle, names included: equal digests, identical bundles."""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(directory).rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(directory)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def check_int8(metadata: BundleMetadata) -> None:
    """Refuse a bundle whose int8 variant is missing or failed the accuracy gate.

    Raises:
        BundleError: Saying why no int8 variant may be used.
    """
    if metadata.int8 is None:
        raise BundleError(
            "this model has no int8 variant: train it with `quantize: int8` in the profile "
            "(the default), which quantises, evaluates and gates it"
        )
    if not metadata.int8.accepted:
        raise BundleError(
            f"this model's int8 variant was refused by the accuracy gate: {metadata.int8.reason}"
        )


@contextmanager
def download_folder(model: str) -> Iterator[Path | None]:
    """A private folder for the files of a registry model, removed afterwards (``None`` for a local one)."""
    if Path(model).exists() or ":/" not in model:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="seqops-model-") as folder:
        yield Path(folder)


def resolve_bundle(model: str, cache_dir: Path | None = None) -> Path:
    """Find the bundle folder for a local path or an MLflow URI (``models:/name@alias``, ``runs:/...``).

    Args:
        model: A bundle folder, a logged pyfunc folder, or an MLflow model URI.
        cache_dir: Where to download MLflow artifacts (a temporary folder when ``None``).

    Returns:
        The folder holding ``bundle.json``.

    Raises:
        BundleError: If no bundle is found at ``model``, or MLflow says it has no such model.
    """
    path = Path(model)
    if not path.exists() and ":/" in model:
        import mlflow  # only when asked for an MLflow URI: plain bundle folders need no tracking server
        from mlflow.exceptions import MlflowException

        try:
            downloaded = mlflow.artifacts.download_artifacts(
                artifact_uri=model, dst_path=str(cache_dir) if cache_dir else None
            )
        except MlflowException as error:
            if error.error_code not in MISSING_MODEL_CODES:
                raise
            raise BundleError(f"MLflow has no model at {model}: {error.message}") from None
        path = Path(downloaded)
    # A bundle folder itself, or a logged pyfunc model holding it under artifacts/.
    for candidate in (path, *sorted((path / "artifacts").glob("*"))):
        if (candidate / METADATA_FILE).is_file():
            return candidate
    raise BundleError(f"no seqops model bundle ({METADATA_FILE}) at {model}")
