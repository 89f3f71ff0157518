"""MLflow pyfunc wrapper: the ONNX bundle served by ``mlflow.pyfunc.load_model``, no torch needed."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import pandas as pd

from serving.predictor import Predictor

BUNDLE_ARTIFACT = "bundle"
MODEL_CODE = Path(__file__).with_name("pyfunc_entry.py")  # logged as code, so no pickled object
# The torch-free packages the model imports, copied into it so it loads where seqops is not installed.
CODE_PATHS = [str(Path(__file__).parent), str(Path(__file__).parents[1] / "tasks")]
SERVING_PACKAGES = [
    "mlflow",
    "onnxruntime",
    "tokenizers",
    "numpy",
    "pandas",
    "pyarrow",
    "pydantic",
    "datasets",
]
# Pinned to the versions installed here, which pyproject.toml pins: what was tested is what is served.
PIP_REQUIREMENTS = [f"{name}=={version(name)}" for name in SERVING_PACKAGES]


class OnnxSequenceModel(mlflow.pyfunc.PythonModel):
    """Predicts with the bundle's onnxruntime session; the session is built on load, never pickled."""

    # Rows are validated by the task codec, which reports bad rows instead of rejecting the whole batch,
    # so MLflow's type-hint validation (and its warning on every import) is switched off.
    _skip_type_hint_validation = True

    def __init__(self) -> None:
        self._predictor: Predictor | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_predictor": None}

    def load_context(self, context: mlflow.pyfunc.PythonModelContext) -> None:
        """Open the bundle logged as the ``bundle`` artifact."""
        self._predictor = Predictor(Path(context.artifacts[BUNDLE_ARTIFACT]))

    # model_input stays unannotated: MLflow would turn a type hint into a schema and reject DataFrames.
    def predict(
        self,
        context: mlflow.pyfunc.PythonModelContext,
        model_input,  # noqa: ANN001
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame:
        """Predict a DataFrame, a list of records, or a list of strings (taken as ``text``).

        Returns:
            One row per input: the prediction fields, or ``error`` with the reason for a bad row.
        """
        if self._predictor is None:
            raise RuntimeError("model context not loaded")
        if isinstance(model_input, pd.DataFrame):
            rows = model_input.to_dict("records")
        else:
            rows = [r if isinstance(r, dict) else {"text": r} for r in model_input]
        return pd.DataFrame(self._predictor.predict_rows(rows))
