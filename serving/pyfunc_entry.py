"""Models-from-code entry point: MLflow runs this file to build the model when it loads it."""

from mlflow.models import set_model

from serving.pyfunc import OnnxSequenceModel

set_model(OnnxSequenceModel())
