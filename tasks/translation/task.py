"""Machine translation: a sentence in one language to the other (Multi30k German -> English by default).

Subword (BPE) tokenizers are trained on the training split only; over-long training pairs are dropped
and counted. Inference runs two ONNX graphs, the encoder and one decoder step, driven by the
torch-free beam search in ``tasks.common.decoding``: the same code decodes with onnxruntime or PyTorch.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tasks.common.base import (
    DataConfig,
    PreparedData,
    Task,
    datasets,
    fingerprint,
    load_prepared,
    save_prepared,
)
from tasks.common.errors import DataSourceError
from tasks.common.hooks import Artifact, Evaluation, Figure, Table
from tasks.common.sources import first_available, load_from_hub
from tasks.common.subwords import train_bpe
from tasks.translation.codec import TranslationCodec
from tasks.translation.metrics import translation_scores

CACHE_VERSION = 2  # 2: languages in the codec settings, whitespace-only pairs dropped
SPLIT_FILES = {"train": "train", "validation": "val", "test": "test_2016_flickr"}


class TranslationConfig(DataConfig):
    """Data, tokenizer and decoding settings for translation.

    Attributes:
        source_language: Language code of the input (a file suffix / Hub column), ``de`` by default.
        target_language: Language code of the output, ``en`` by default.
        corpus_dir: A user's folder in the Multi30k layout: ``<split>.<lang>[.gz]``, one sentence a line.
        split_files: File stem of each split.
        hub_id: Hugging Face Hub data set with one column per language, used when no folder is found.
        vocab_size: Largest BPE vocabulary per language (or shared, with ``joint_vocabulary``).
        joint_vocabulary: One tokenizer trained on both languages instead of one per language.
        min_frequency: Merges seen fewer times are not learned.
        lowercase: Lower-case both sides (the published Multi30k numbers are lower-cased).
        max_train_tokens: Training pairs longer than this on either side are dropped (and counted).
        max_input_tokens: Longest input served; longer ones are handled as ``overlong`` says.
        overlong: ``truncate`` (and flag ``source_truncated``) or ``reject`` as an error row.
        beam_width: Beams kept while decoding; 1 is greedy.
        length_penalty: Hypotheses are ranked by log-probability / length ** length_penalty.
        max_output_ratio: Decoding stops at ``max_output_ratio * source tokens + 10`` tokens.
    """

    source_language: str = "de"
    target_language: str = "en"
    corpus_dir: Path | None = None
    split_files: dict[str, str] = SPLIT_FILES
    hub_id: str = "bentrevett/multi30k"
    vocab_size: int = Field(8000, ge=100)
    joint_vocabulary: bool = False
    min_frequency: int = Field(2, ge=1)
    lowercase: bool = True
    max_train_tokens: int = Field(64, ge=2)
    max_input_tokens: int = Field(128, ge=1)
    overlong: Literal["truncate", "reject"] = "truncate"
    beam_width: int = Field(5, ge=1, le=64)
    length_penalty: float = Field(1.0, ge=0.0)
    max_output_ratio: float = Field(2.0, gt=0.0)

    @model_validator(mode="after")
    def _languages_differ(self) -> TranslationConfig:
        if self.source_language == self.target_language:
            raise ValueError("source_language and target_language must differ")
        if set(self.split_files) != set(SPLIT_FILES):
            raise ValueError(f"split_files needs exactly the keys {sorted(SPLIT_FILES)}")
        return self


def read_lines(folder: Path, stem: str, language: str) -> list[str]:
    """Lines of ``<stem>.<language>`` or ``<stem>.<language>.gz``."""
    for path in (folder / f"{stem}.{language}.gz", folder / f"{stem}.{language}"):
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as lines:
                return [line.rstrip("\r\n") for line in lines]
    raise DataSourceError(f"{folder} has no {stem}.{language}[.gz]")


class TranslationOptions(BaseModel):
    """What ``seqops predict --option`` may change for a translation model.

    Attributes:
        beam_width: Hypotheses kept while decoding (1 is greedy); default: the model's own.
    """

    model_config = ConfigDict(extra="forbid")

    beam_width: int | None = Field(None, ge=1, le=64)


class Translation(Task):
    """Sentence translation with an attention sequence-to-sequence network."""

    name = "translation"
    family = "seq2seq"
    config_model = TranslationConfig
    promotion_metric = "bleu"
    metric_points = 1.0  # BLEU is already in points
    promotion_direction = "max"
    evaluation_variants = {"greedy": {"beam_width": 1}}
    summary_metrics = ("bleu", "chrf", "bleu_greedy", "chrf_greedy")
    search_space = {
        "model.embedding_dim": {"low": 128, "high": 512, "log": True},
        "model.hidden_size": {"low": 128, "high": 512, "log": True},
        "model.dropout": {"low": 0.1, "high": 0.5},
        "train.learning_rate": {"low": 5e-4, "high": 3e-3, "log": True},
        "train.label_smoothing": {"low": 0.0, "high": 0.2},
    }
    inference_options = TranslationOptions

    def diagnostics(self, evaluation: Evaluation, count: int = 20) -> list[Artifact]:
        """Attention heat maps of four test sentences; ``count`` example translations, beam and greedy."""
        from tasks.translation.plots import attention_figure  # matplotlib only when plotting

        split = evaluation.split
        rows, references = self.references(split.select(range(min(count, len(split)))), evaluation.codec)
        attended = evaluation.predict(rows[:4], keep_attention=True)
        beam = evaluation.predict(rows)
        greedy = evaluation.predict(rows, beam_width=1)
        examples = {
            "source": [r["text"] for r in rows],
            "reference": references,
            "beam": [p["translation"] for p in beam],
            "greedy": [p["translation"] for p in greedy],
            "beam_score": [p["score"] for p in beam],
        }
        return [
            Figure("attention.png", attention_figure(attended, evaluation.title)),
            Table("examples.json", examples),
        ]

    def _folder(self, folder: Path | None, config: TranslationConfig) -> dict[str, Any] | None:
        if folder is None or not folder.is_dir():
            return None
        splits = {}
        for split, stem in config.split_files.items():
            source = read_lines(folder, stem, config.source_language)
            target = read_lines(folder, stem, config.target_language)
            if len(source) != len(target):
                raise DataSourceError(f"{folder}/{stem}: {len(source)} source lines but {len(target)} target")
            splits[split] = {"source": source, "target": target}
        return splits

    def _hub(self, config: TranslationConfig) -> dict[str, Any]:
        hub = load_from_hub(config.hub_id, "set data_dir to a folder with multi30k/, or corpus_dir")
        languages = (config.source_language, config.target_language)
        return {
            split: {"source": list(hub[split][languages[0]]), "target": list(hub[split][languages[1]])}
            for split in ("train", "validation", "test")
        }

    def prepare(self, config: TranslationConfig) -> PreparedData:
        """Read the first available source, train the tokenizers on train, encode, filter and cache."""
        multi30k = config.data_dir / "multi30k" if config.data_dir else None
        source, raw = first_available(
            [
                (f"corpus_dir {config.corpus_dir}", lambda: self._folder(config.corpus_dir, config)),
                (f"data_dir {multi30k}", lambda: self._folder(multi30k, config)),
                (f"hub {config.hub_id}", lambda: self._hub(config)),
            ]
        )
        key = fingerprint(CACHE_VERSION, config.model_dump(exclude={"cache_dir", "data_dir"}), raw)
        cache = Path(config.cache_dir) / self.name / key
        return load_prepared(cache, self, source, key) or self._build(raw, config, source, key, cache)

    def _build(
        self, raw: dict[str, Any], config: TranslationConfig, source: str, key: str, cache: Path
    ) -> PreparedData:
        if config.limit:
            raw = {s: {side: t[: config.limit] for side, t in pair.items()} for s, pair in raw.items()}
        train = raw["train"]
        trainer = {"vocab_size": config.vocab_size, "min_frequency": config.min_frequency}
        if config.joint_vocabulary:
            source_tokenizer = target_tokenizer = train_bpe(
                train["source"] + train["target"], lowercase=config.lowercase, **trainer
            )
        else:
            source_tokenizer = train_bpe(train["source"], lowercase=config.lowercase, **trainer)
            target_tokenizer = train_bpe(train["target"], lowercase=config.lowercase, **trainer)
        decoding = {
            "source_language",
            "target_language",
            "lowercase",
            "max_input_tokens",
            "overlong",
            "beam_width",
            "length_penalty",
            "max_output_ratio",
        }
        codec = TranslationCodec(source_tokenizer, target_tokenizer, config.model_dump(include=decoding))
        stats: dict[str, float] = {}
        splits = {}
        for split, pair in raw.items():
            source_ids = [e.ids for e in source_tokenizer.encode_batch(pair["source"])]
            target_ids = [
                [codec.bos, *e.ids, codec.eos] for e in target_tokenizer.encode_batch(pair["target"])
            ]
            keep = [
                i
                for i, text in enumerate(pair["source"])
                if text.strip() and source_ids[i] and pair["target"][i].strip()
            ]
            if split == "train":
                limit = config.max_train_tokens
                keep = [i for i in keep if len(source_ids[i]) <= limit and len(target_ids[i]) - 2 <= limit]
            stats[f"filtered_{split}"] = len(source_ids) - len(keep)
            stats[f"pairs_{split}"] = len(keep)
            splits[split] = datasets.Dataset.from_dict(
                {
                    "source": [pair["source"][i] for i in keep],
                    "target": [pair["target"][i] for i in keep],
                    "input_ids": [source_ids[i] for i in keep],
                    "target_ids": [target_ids[i] for i in keep],
                }
            )
        stats["source_vocab_size"] = source_tokenizer.get_vocab_size()
        stats["target_vocab_size"] = target_tokenizer.get_vocab_size()
        return save_prepared(PreparedData(datasets.DatasetDict(splits), codec, source, key, stats), cache)

    def load_codec(self, directory: Path) -> TranslationCodec:
        """Load the tokenizers and decoding settings saved in a model bundle."""
        return TranslationCodec.load(directory)

    def references(
        self, split: datasets.Dataset, codec: TranslationCodec
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Source sentences as rows and their reference translations (normalised like the model's output)."""
        normalise = codec.target_tokenizer.normalizer.normalize_str  # as the model's output was
        return [{"text": text} for text in split["source"]], [normalise(t) for t in split["target"]]

    def metrics(self, predictions: list[dict[str, Any]], references: list[str]) -> dict[str, float]:
        """Corpus BLEU and chrF (sacrebleu) on detokenised text; a rejected input counts as no output."""
        scores = translation_scores([p.get("translation", "") for p in predictions], references)
        return scores | {"rejected": float(sum("error" in p for p in predictions))}


TASK = Translation()
