"""The language-model family (see family.py)."""

from models.families.language_model.family import LanguageModelFamily

FAMILY = LanguageModelFamily()

__all__ = ["FAMILY"]
