"""A fresh SQLite registry for the champion gate's tests, holding a model logged with its bundle."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import mlflow

from flows.tracker import tracker
from flows.tracking import log_bundle_model


@contextmanager
def registry_with_a_bundle(folder: Path, experiment: str) -> Iterator[str]:
    """Track to a new registry in ``folder`` for the block; yields the URI of a model logged with a bundle.

    The bundle holds ``bundle.json`` and ``model.onnx``: the gate checks which files a version holds,
    not what they say. Artifacts stay in ``folder``, never in the working directory.
    """
    bundle = folder / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text("{}")
    (bundle / "model.onnx").write_bytes(b"graph")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    try:
        tracker.use_experiment(experiment, folder)
        with mlflow.start_run():
            model_uri = log_bundle_model(bundle).model_uri
        yield model_uri
    finally:
        mlflow.set_tracking_uri(previous)
