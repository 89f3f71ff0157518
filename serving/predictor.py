"""The onnxruntime predictor that serves a model bundle (see ``serving.bundle``): rows in, predictions out.

A prediction whose model outputs are not finite (an input far outside anything seen in training can
drive a network there) is an ``InvalidRow``, never a confident answer with NaN inside.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from serving.bundle import check_int8, graph_files, load_codec, read_metadata
from serving.errors import JobError
from tasks import BundleError, InvalidRow, get_task
from tasks.common.base import declared_feeds
from tasks.common.errors import first_line

NON_FINITE = "the model's output is NaN or infinite for this input (far outside the training data?)"
Batch = tuple[list[int], dict[str, Any]]  # item positions and their encoded feeds


def available_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"]}


def check_device(device: str) -> None:
    """Refuse a device this onnxruntime cannot run on, before any model is loaded.

    Raises:
        JobError: For an unknown device, or ``cuda`` without onnxruntime's CUDA execution provider.
    """
    if device not in PROVIDERS:
        raise JobError(f"--device must be one of {sorted(PROVIDERS)}, got {device!r}")
    available = ort.get_available_providers()
    if not set(PROVIDERS[device]) <= set(available):
        raise JobError(
            f"--device {device} needs onnxruntime's CUDA execution provider, and this onnxruntime "
            f"{ort.__version__} offers {available}: install onnxruntime-gpu in place of onnxruntime "
            "(pip uninstall onnxruntime && pip install onnxruntime-gpu), or use --device cpu"
        )


def make_session(model_path: Path, threads: int | None = None, device: str = "cpu") -> ort.InferenceSession:
    """Create an onnxruntime session tuned for a small shared machine.

    Args:
        model_path: The ``.onnx`` file.
        threads: Intra-op threads; ``None`` uses every core the process may run on.
        device: ``cpu``, or ``cuda`` (onnxruntime-gpu; operators CUDA lacks run on the CPU).

    Returns:
        The session, with full graph optimisation and thread spinning off (spinning threads
        starve other work, such as reading input or a torch pool, on a 2-core machine).

    Raises:
        BundleError: Naming the file, when onnxruntime cannot load it.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or available_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(model_path), options, providers=PROVIDERS[device])
    except Exception as error:  # onnxruntime's own types: Fail, InvalidProtobuf, InvalidGraph, NoSuchFile...
        raise BundleError(f"{model_path} is not a loadable ONNX graph ({first_line(error)})") from None


class Predictor:
    """Runs a bundle with onnxruntime: raw rows in, prediction records out.

    Args:
        directory: The bundle folder, checked file by file as it is loaded.
        threads: Batches run at once, each on one onnxruntime thread (default: every core). Parallel
            single-threaded runs beat one multi-threaded run for recurrent graphs, whose per-step
            matrices are too small to split well.
        batch_size: Items per onnxruntime call.
        quantize: ``"int8"`` to run the int8 graphs, refused unless they passed the accuracy gate.
        require_gate: Run int8 graphs the gate has not accepted (the gate's own evaluation).
        device: ``cpu``, or ``cuda`` with onnxruntime-gpu (then one lane unless ``threads`` says more).

    Raises:
        BundleError: Naming the bundle file that is missing, unreadable or mistyped.
        JobError: For a device this onnxruntime cannot use.

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
        device: str = "cpu",
    ):
        check_device(device)
        if quantize not in (None, "int8"):
            raise ValueError(f"quantize must be 'int8' or None, got {quantize!r}")
        self.directory = Path(directory)
        self.bundle = read_metadata(self.directory)
        self.metadata = self.bundle.model_dump(exclude_none=True)
        self.task = get_task(self.bundle.task)
        self.codec = load_codec(self.directory, self.task)
        if quantize and require_gate:  # only the gate itself runs a variant not yet accepted
            check_int8(self.bundle)
        files = graph_files(self.directory, self.codec, quantize)
        self.sessions = {graph: make_session(path, 1, device) for graph, path in files.items()}
        self.inputs = {graph: [i.name for i in s.get_inputs()] for graph, s in self.sessions.items()}
        self.batch_size = batch_size
        self.quantize = quantize
        # One GPU stream takes whole batches; lanes of their own would only queue on it.
        self.lanes = threads or (available_cores() if device == "cpu" else 1)
        self.pool = ThreadPoolExecutor(self.lanes, "seqops-infer") if self.lanes > 1 else None
        self.ort_seconds = 0.0
        self._clock = threading.Lock()

    def run(self, graph: str, feeds: dict[str, Any]) -> dict[str, Any]:
        """Run one of the bundle's graphs on named arrays; returns its named outputs."""
        session = self.sessions[graph]
        names = [output.name for output in session.get_outputs()]
        started = time.perf_counter()
        try:
            outputs = session.run(names, declared_feeds(feeds, self.inputs[graph]))
        except Exception as error:  # onnxruntime's own types; the graph does not fit the codec's inputs
            raise BundleError(
                f"{self.directory}: the '{graph}' graph failed to run ({first_line(error)})"
            ) from None
        with self._clock:
            self.ort_seconds += time.perf_counter() - started
        return dict(zip(names, outputs, strict=True))

    def encode_batches(self, items: list[Any]) -> list[Batch]:
        """Sort items by length and encode them ``batch_size`` at a time (little padding to compute)."""
        order = sorted(range(len(items)), key=lambda index: self.codec.item_length(items[index]))
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        return [(batch, self.codec.encode([items[index] for index in batch])) for batch in batches]

    def predict_batches(
        self, batches: list[Batch], count: int, **options: Any
    ) -> list[dict[str, Any] | InvalidRow]:
        """Run encoded batches (``options`` go to the codec); predictions come back in item order.

        An item whose model outputs are not all finite gets an ``InvalidRow`` instead of a prediction.
        """

        def predict(feeds: dict[str, Any]) -> list[dict[str, Any] | InvalidRow]:
            outputs = self.codec.infer(self.run, feeds, **options)
            try:
                decoded: list[dict[str, Any] | InvalidRow] = list(self.codec.decode(outputs))
            except (ValueError, IndexError, KeyError) as error:  # such as more labels than logits
                raise BundleError(
                    f"{self.directory}: the graph's outputs do not fit its codec ({error})"
                ) from None
            finite = finite_items(outputs, len(decoded))
            return [p if ok else InvalidRow(NON_FINITE) for p, ok in zip(decoded, finite, strict=True)]

        all_feeds = [feeds for _, feeds in batches]
        decoded = (
            self.pool.map(predict, all_feeds) if self.pool and len(batches) > 1 else map(predict, all_feeds)
        )
        predictions: list[dict[str, Any] | InvalidRow] = [{} for _ in range(count)]
        for (positions, _), batch_predictions in zip(batches, decoded, strict=True):
            for index, prediction in zip(positions, batch_predictions, strict=True):
                predictions[index] = prediction
        return predictions

    def predict_items(self, items: list[Any], **options: Any) -> list[dict[str, Any] | InvalidRow]:
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
            results[index] = {"error": str(prediction)} if isinstance(prediction, InvalidRow) else prediction
        return results


def finite_items(outputs: dict[str, Any], count: int) -> np.ndarray:
    """Which of ``count`` items have only finite values in the float outputs that hold a row per item."""
    finite = np.ones(count, dtype=bool)
    for value in outputs.values():
        if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.ndim and len(value) == count:
            finite &= np.isfinite(value.reshape(count, -1)).all(axis=1)
    return finite
