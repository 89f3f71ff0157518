"""The classifier network family (registered as ``classifier`` under ``seqops.families``)."""

from models.families.classifier.family import ClassifierFamily

FAMILY = ClassifierFamily()

__all__ = ["FAMILY", "ClassifierFamily"]
