"""Sentiment analysis: binary polarity of a sentence (SST-2 by default)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

from tasks.common.base import (
    Codec,
    DataConfig,
    PreparedData,
    datasets,
    fingerprint,
    load_prepared,
    save_prepared,
)
from tasks.common.classification import ClassificationTask, classification_scores
from tasks.common.errors import DataSourceError
from tasks.common.sources import TABLE_BUILDERS, first_available, load_from_hub, read_table
from tasks.sentiment.baseline import tfidf_logistic_regression
from tasks.sentiment.codec import PAD, UNK, SentimentCodec

SST2_FILES = {"train": "stsa.binary.train", "validation": "stsa.binary.dev", "test": "stsa.binary.test"}
CACHE_VERSION = 1  # bump when preparation logic changes so stale caches are not reused


class SentimentConfig(DataConfig):
    """Data settings for sentiment analysis.

    Attributes:
        train_file: A user's own training file (SST line format, CSV, JSONL or Parquet).
        validation_file: Optional validation file; without it 10% of train is held out.
        test_file: Test file, required together with ``train_file``.
        text_column: Column holding the text in CSV/JSONL/Parquet files.
        label_column: Column holding the 0/1 label in CSV/JSONL/Parquet files.
        hub_id: Hugging Face Hub data set used when no local file is configured.
        tokenizer: ``word`` (word level) or ``bpe`` (byte-pair subwords), trained on train.
        vocab_size: Largest vocabulary the tokenizer may learn.
        min_frequency: Rarer tokens map to ``[UNK]``.
        max_length: Longer inputs are truncated to this many tokens.
    """

    train_file: Path | None = None
    validation_file: Path | None = None
    test_file: Path | None = None
    text_column: str = "text"
    label_column: str = "label"
    hub_id: str = "stanfordnlp/sst2"
    tokenizer: Literal["word", "bpe"] = "word"
    vocab_size: int = Field(20_000, ge=10)
    min_frequency: int = Field(2, ge=1)
    max_length: int = Field(64, ge=1)
    labels: list[str] = ["negative", "positive"]


def train_tokenizer(texts: list[str], config: SentimentConfig) -> Tokenizer:
    """Train a word-level or BPE tokenizer on training texts only."""
    if config.tokenizer == "word":
        tokenizer = Tokenizer(models.WordLevel(unk_token=UNK))
        trainer = trainers.WordLevelTrainer(
            vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=[PAD, UNK]
        )
    else:
        tokenizer = Tokenizer(models.BPE(unk_token=UNK))
        trainer = trainers.BpeTrainer(
            vocab_size=config.vocab_size, min_frequency=config.min_frequency, special_tokens=[PAD, UNK]
        )
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(texts, trainer)
    return tokenizer


def read_sst_lines(path: Path) -> datasets.Dataset:
    """Read the SST line format: ``<label> <text>`` per line."""
    if not path.is_file():
        raise DataSourceError(f"data file not found: {path}")
    labels, texts = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        label, _, text = line.strip().partition(" ")
        if not label:
            continue
        if not label.lstrip("-").isdigit():
            raise DataSourceError(f"{path}:{number}: expected '<label> <text>', got {line[:40]!r}")
        labels.append(int(label))
        texts.append(text)
    return datasets.Dataset.from_dict({"text": texts, "label": labels})


class Sentiment(ClassificationTask):
    """Binary sentiment classification of sentences."""

    name = "sentiment"
    config_model = SentimentConfig
    search_space = ClassificationTask.search_space | {
        "model.embedding_dim": {"low": 64, "high": 300, "log": True},
        "model.hidden_size": {"low": 64, "high": 512, "log": True},
        "model.dropout": {"low": 0.1, "high": 0.6},
        "train.learning_rate": {"low": 3e-4, "high": 5e-3, "log": True},
        "train.weight_decay": {"low": 1e-7, "high": 1e-4, "log": True},
    }

    def _user_files(self, config: SentimentConfig) -> datasets.DatasetDict | None:
        if config.train_file is None:
            return None
        if config.test_file is None:
            raise DataSourceError("train_file is set but test_file is not; set both")
        files = {"train": config.train_file, "test": config.test_file}
        if config.validation_file is not None:
            files["validation"] = config.validation_file
        splits = {}
        for split, path in files.items():
            table = read_table(path) if path.suffix.lower() in TABLE_BUILDERS else read_sst_lines(path)
            missing = {config.text_column, config.label_column} - set(table.column_names)
            if missing:
                raise DataSourceError(
                    f"{path} lacks column(s) {sorted(missing)}; set text_column/label_column"
                )
            table = table.select_columns([config.text_column, config.label_column])
            splits[split] = table.rename_columns({config.text_column: "text", config.label_column: "label"})
        return datasets.DatasetDict(splits)

    def _data_dir(self, config: SentimentConfig) -> datasets.DatasetDict | None:
        folder = config.data_dir / "sst2" if config.data_dir else None
        if folder is None or not folder.is_dir():
            return None
        return datasets.DatasetDict({split: read_sst_lines(folder / f) for split, f in SST2_FILES.items()})

    def _hub(self, config: SentimentConfig) -> datasets.DatasetDict:
        hub = load_from_hub(config.hub_id, "set data_dir to a folder with sst2/, or train_file and test_file")
        # The Hub's test labels are hidden (-1): its validation split serves as test.
        return (
            datasets.DatasetDict({"train": hub["train"], "test": hub["validation"]})
            .rename_column("sentence", "text")
            .select_columns(["text", "label"])
        )

    def prepare(self, config: SentimentConfig) -> PreparedData:
        """Load the first available source, clean, split, tokenise and cache it."""
        source, raw = first_available(
            [
                (f"files {config.train_file}, {config.test_file}", lambda: self._user_files(config)),
                (f"data_dir {config.data_dir}/sst2", lambda: self._data_dir(config)),
                (f"hub {config.hub_id}", lambda: self._hub(config)),
            ]
        )
        content = [raw[split].select_columns(["text", "label"]).to_dict() for split in sorted(raw)]
        key = fingerprint(CACHE_VERSION, config.model_dump(exclude={"cache_dir", "data_dir"}), content)
        cache = Path(config.cache_dir) / self.name / key
        return load_prepared(cache, self, source, key) or self._build(raw, config, source, key, cache)

    def _build(
        self, raw: datasets.DatasetDict, config: SentimentConfig, source: str, key: str, cache: Path
    ) -> PreparedData:
        num_labels = len(config.labels)
        stats: dict[str, float] = {}
        cleaned = {}
        for split, table in raw.items():
            rows = [
                (text, label)
                for text, label in zip(table["text"], table["label"], strict=True)
                if isinstance(text, str) and text.strip() and label in range(num_labels)
            ]
            stats[f"dropped_{split}"] = len(table) - len(rows)
            cleaned[split] = datasets.Dataset.from_dict(
                {"text": [t for t, _ in rows], "label": [lb for _, lb in rows]}
            )
        if "validation" not in cleaned:
            held_out = cleaned["train"].train_test_split(test_size=0.1, seed=config.seed)
            cleaned["train"], cleaned["validation"] = held_out["train"], held_out["test"]
        if config.limit:
            cleaned = {s: t.select(range(min(config.limit, len(t)))) for s, t in cleaned.items()}
        codec = SentimentCodec(
            train_tokenizer(cleaned["train"]["text"], config), config.labels, config.max_length
        )
        splits = datasets.DatasetDict(
            {s: t.add_column("input_ids", codec.token_ids(t["text"])) for s, t in cleaned.items()}
        )
        stats.update({f"rows_{s}": len(t) for s, t in splits.items()})
        stats["vocab_size"] = codec.tokenizer.get_vocab_size()
        return save_prepared(PreparedData(splits, codec, source, key, stats), cache)

    def load_codec(self, directory: Path) -> SentimentCodec:
        """Load the tokenizer and label names saved in a model bundle."""
        return SentimentCodec.load(directory)

    def references(self, split: datasets.Dataset, codec: Codec) -> tuple[list[dict[str, Any]], list[int]]:
        """Raw text rows and their true label ids."""
        return [{"text": text} for text in split["text"]], list(split["label"])

    def baselines(self, prepared: PreparedData) -> dict[str, Callable[[], dict[str, float]]]:
        """TF-IDF word and character n-grams + logistic regression (``tasks.sentiment.baseline``)."""
        return {"tfidf_logreg": partial(tfidf_logistic_regression, self, prepared)}

    def metrics(self, predictions: list[dict[str, Any]], references: list[int]) -> dict[str, float]:
        """Accuracy and macro precision, recall and F1."""
        predicted = np.array([p["label_id"] for p in predictions])
        return classification_scores(predicted, np.array(references), list(predictions[0]["probabilities"]))


TASK = Sentiment()
