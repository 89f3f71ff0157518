"""The seq2seq network family (registered as ``seq2seq`` under ``seqops.families``)."""

from models.families.seq2seq.family import Seq2SeqFamily

FAMILY = Seq2SeqFamily()

__all__ = ["FAMILY", "Seq2SeqFamily"]
