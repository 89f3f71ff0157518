"""The sentiment codec: text to padded token ids, logits to labelled probabilities."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field
from tokenizers import Tokenizer
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before Python 3.12

from tasks.common.assets import ClassNames, build_codec, read_asset
from tasks.common.base import Codec
from tasks.common.classification import class_predictions
from tasks.common.errors import InvalidRow
from tasks.common.subwords import load_tokenizer, pad_ids
from tasks.common.word_lookup import tokenizer_ids

PAD, UNK = "[PAD]", "[UNK]"


class SentimentSettings(TypedDict):
    """What ``codec.json`` holds for a sentiment classifier."""

    labels: ClassNames
    max_length: Annotated[int, Field(ge=1)]


class SentimentCodec(Codec):
    """Tokenises text into padded id arrays and turns logits into labelled probabilities."""

    unknown_id = 1  # [UNK], right after [PAD]

    def __init__(self, tokenizer: Tokenizer, labels: list[str], max_length: int):
        self.tokenizer = tokenizer
        self.labels = labels
        self.max_length = max_length
        self._ids = tokenizer_ids(tokenizer)

    def token_ids(self, texts: list[str]) -> list[list[int]]:
        """Tokenise texts, truncated to ``max_length``."""
        return [ids[: self.max_length] for ids in self._ids(texts)]

    def parse(self, row: dict[str, Any]) -> str:
        """Return the row's text, or raise ``InvalidRow`` saying what is wrong with it."""
        if "text" not in row:
            raise InvalidRow("missing field 'text'")
        text = row["text"]
        if not isinstance(text, str):
            raise InvalidRow(f"'text' must be a string, got {type(text).__name__}")
        if not text.strip():
            raise InvalidRow("'text' is empty")
        try:  # a JSON escape can make a lone surrogate, which the tokenizer cannot take
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRow("invalid Unicode (a lone surrogate) in field 'text'") from None
        return text

    def encode(self, items: list[str]) -> dict[str, np.ndarray]:
        """Encode texts as ``input_ids`` (right-padded with 0) and ``lengths``."""
        return pad_ids(self.token_ids(items))

    def decode(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """Turn ``logits`` into label, confidence and per-class probabilities."""
        return class_predictions(outputs["logits"], self.labels)

    def network_shape(self) -> dict[str, int]:
        """Vocabulary size (embedding rows) and number of classes."""
        return {"vocab_size": self.tokenizer.get_vocab_size(), "num_classes": len(self.labels)}

    def save(self, directory: Path) -> None:
        """Write ``tokenizer.json`` and ``codec.json`` into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / "tokenizer.json"))
        (directory / "codec.json").write_text(
            json.dumps({"labels": self.labels, "max_length": self.max_length}, indent=2)
        )

    @classmethod
    def load(cls, directory: Path) -> SentimentCodec:
        """Load a codec written by ``save``.

        Raises:
            BundleError: Naming the file that is missing, unreadable or mistyped.
        """
        settings = read_asset(directory, "codec.json", SentimentSettings)
        tokenizer = load_tokenizer(directory, "tokenizer.json")
        return build_codec(cls, directory / "codec.json", tokenizer, **settings)
