"""The forecaster network family (registered as ``forecaster`` under ``seqops.families``)."""

from models.families.forecaster.family import ForecasterFamily

FAMILY = ForecasterFamily()

__all__ = ["FAMILY", "ForecasterFamily"]
