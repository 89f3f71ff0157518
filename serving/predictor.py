"""A model bundle on disk and the onnxruntime predictor that serves it.

A bundle is a folder holding the ONNX graphs the task's codec names (``model.onnx``, or
``encoder.onnx`` and ``decoder_step.onnx`` for translation), ``bundle.json`` (task name and metadata)
and the codec's assets (tokenizers, label names, scalers). It is what gets logged to MLflow and served.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import onnxruntime as ort

from tasks import Codec, InvalidRow, get_task

METADATA_FILE = "bundle.json"
INT8_DIR = "int8"  # a bundle's quantised graphs, present only when they passed the accuracy gate
Batch = tuple[list[int], dict[str, Any]]  # item positions and their encoded feeds


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_session(model_path: Path, threads: int | None = None) -> ort.InferenceSession:
    """Create a CPU onnxruntime session tuned for a small shared machine.

    Args:
        model_path: The ``.onnx`` file.
        threads: Intra-op threads; ``None`` uses every core the process may run on.

    Returns:
        The session, with full graph optimisation and thread spinning off (spinning threads
        starve other work, such as reading input or a torch pool, on a 2-core machine).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


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


class Predictor:
    """Runs a bundle with onnxruntime: raw rows in, prediction records out.

    Args:
        directory: The bundle folder.
        threads: Batches run at once, each on one onnxruntime thread (default: every core). Parallel
            single-threaded runs beat one multi-threaded run for recurrent graphs, whose per-step
            matrices are too small to split well.
        batch_size: Items per onnxruntime call.
        quantize: ``"int8"`` to run the int8 graphs, refused unless they passed the accuracy gate.
        require_gate: Run int8 graphs the gate has not accepted (the gate's own evaluation).

    Attributes:
        lanes: Batches predicted at once.
        ort_seconds: Time spent inside onnxruntime so far, summed over lanes (for the job's report).
    """

    def __init__(
        self,
        directory: Path,
        threads: int | None = None,
        batch_size: int = 256,
        quantize: str | None = None,
        require_gate: bool = True,
    ):
        self.directory = Path(directory)
        self.metadata = json.loads((self.directory / METADATA_FILE).read_text())
        self.task = get_task(self.metadata["task"])
        self.codec = self.task.load_codec(self.directory)
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be 'int8' or None, got {quantize!r}")
        if quantize and require_gate:  # only the gate itself runs a variant not yet accepted
            check_int8(self.metadata)
        graphs_dir = self.directory / INT8_DIR if quantize else self.directory
        self.sessions = {
            graph: make_session(graphs_dir / f"{graph}.onnx", threads=1) for graph in self.codec.graphs
        }
        self.batch_size = batch_size
        self.quantize = quantize
        self.lanes = threads or available_cores()
        self.pool = ThreadPoolExecutor(self.lanes, "seqops-infer") if self.lanes > 1 else None
        self.ort_seconds = 0.0
        self._clock = threading.Lock()

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run one of the bundle's graphs on named arrays; returns its named outputs."""
        session = self.sessions[graph]
        names = [output.name for output in session.get_outputs()]
        started = time.perf_counter()
        outputs = session.run(names, feeds)
        with self._clock:
            self.ort_seconds += time.perf_counter() - started
        return dict(zip(names, outputs, strict=True))

    def encode_batches(self, items: list[Any]) -> list[Batch]:
        """Sort items by length and encode them ``batch_size`` at a time (little padding to compute)."""
        order = sorted(range(len(items)), key=lambda index: self.codec.item_length(items[index]))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        return [(batch, self.codec.encode([items[index] for index in batch])) for batch in batches]

    def predict_batches(self, batches: list[Batch], count: int, **options: Any) -> list[dict[str, Any]]:
        """Run encoded batches (``options`` go to the codec); predictions come back in item order."""

        def predict(feeds: dict[str, Any]) -> list[dict[str, Any]]:
            return self.codec.decode(self.codec.infer(self.run, feeds, **options))

        all_feeds = [feeds for _, feeds in batches]
        decoded = (
            self.pool.map(predict, all_feeds) if self.pool and len(batches) > 1 else map(predict, all_feeds)
        )
        predictions: list[dict[str, Any]] = [{} for _ in range(count)]
        for (positions, _), batch_predictions in zip(batches, decoded, strict=True):
            for index, prediction in zip(positions, batch_predictions, strict=True):
                predictions[index] = prediction
        return predictions

    def predict_items(self, items: list[Any], **options: Any) -> list[dict[str, Any]]:
        """Predict already-parsed items, batched by length, returned in their input order."""
        return self.predict_batches(self.encode_batches(items), len(items), **options)

    def predict_rows(self, rows: list[dict[str, Any]], **options: Any) -> list[dict[str, Any]]:
        """Predict raw rows; an invalid row gets ``{"error": reason}`` instead of a prediction."""
        results: list[dict[str, Any]] = [{} for _ in rows]
        good, items = [], []
        for index, row in enumerate(rows):
            try:
                items.append(self.codec.parse(row))
                good.append(index)
            except InvalidRow as reason:
                results[index] = {"error": str(reason)}
        for index, prediction in zip(good, self.predict_items(items, **options), strict=True):
            results[index] = prediction
        return results


def check_int8(metadata: dict[str, Any]) -> None:
    """Refuse a bundle whose int8 variant is missing or failed the accuracy gate.

    Raises:
        ValueError: Saying why no int8 variant may be used.
    """
    gate = metadata.get("int8")
    if gate is None:
        raise ValueError(
            "this model has no int8 variant: train it with `quantize: int8` in the profile "
            "(the default), which quantises, evaluates and gates it"
        )
    if not gate["accepted"]:
        raise ValueError(f"this model's int8 variant was refused by the accuracy gate: {gate['reason']}")


def resolve_bundle(model: str, cache_dir: Path | None = None) -> Path:
    """Find the bundle folder for a local path or an MLflow URI (``models:/name@alias``, ``runs:/...``).

    Args:
        model: A bundle folder, a logged pyfunc folder, or an MLflow model URI.
        cache_dir: Where to download MLflow artifacts (a temporary folder when ``None``).

    Returns:
        The folder holding ``bundle.json``.

    Raises:
        FileNotFoundError: If no bundle is found at ``model``.
    """
    path = Path(model)
    if not path.exists() and ":/" in model:
        import mlflow  # only when asked for an MLflow URI: plain bundle folders need no tracking server

        path = Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=model, dst_path=str(cache_dir) if cache_dir else None
            )
        )
    # A bundle folder itself, or a logged pyfunc model holding it under artifacts/.
    for candidate in (path, *sorted((path / "artifacts").glob("*"))):
        if (candidate / METADATA_FILE).is_file():
            return candidate
    raise FileNotFoundError(f"no seqops model bundle ({METADATA_FILE}) at {model}")
