"""Text generation: a character-level (or BPE) language model that reads text and predicts what comes next.

Tiny Shakespeare is the reference corpus (``tinyshakespeare/input.txt`` in the data folder, or
``karpathy/tiny_shakespeare`` on the Hub); any text file, or a folder of ``.txt`` files, works too.
The text is split contiguously (90 % / 5 % / 5 % by default) and cut into windows of ``window + 1``
tokens: the network reads a window's first ``window`` tokens and predicts each next one (truncated
backpropagation through time over fixed windows).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.common.base import (
    DataConfig,
    GraphRunner,
    PreparedData,
    Task,
    datasets,
    fingerprint,
    load_prepared,
    save_prepared,
)
from tasks.common.errors import DataSourceError
from tasks.common.hooks import Artifact, Evaluation, Table
from tasks.common.sources import first_available, load_from_hub
from tasks.common.subwords import train_bpe
from tasks.text_generation.baseline import ngram_baseline
from tasks.text_generation.codec import GenerationCodec
from tasks.text_generation.sampling import SamplingSettings, generate
from tasks.text_generation.sources import read_text

CACHE_VERSION = 1


class TextGenerationConfig(DataConfig):
    """Data settings for language modelling.

    Attributes:
        text_file: A user's UTF-8 text file, or a folder of ``.txt`` files (read in name order).
        hub_id: Hugging Face Hub data set with a ``text`` column, used when ``use_hub`` is set.
        use_hub: Try the Hub before the local copy.
        split_fractions: Contiguous train, validation and test shares of the text.
        tokenizer: ``char`` (every distinct training character) or ``bpe`` (subword pieces).
        vocab_size: BPE vocabulary size.
        window: Tokens the network reads per training window (the truncated-BPTT length).
        sample_prompt: The prompt continued after every epoch and in the run's samples.
        max_new_tokens: Default tokens generated per prompt.
        temperature: Default sampling temperature (0: greedy).
        top_k: Default top-k filter (0: off).
        top_p: Default nucleus filter (1: off).
        max_prompt_characters: Longest prompt or scored text a served row may hold.
    """

    text_file: Path | None = None
    hub_id: str = "karpathy/tiny_shakespeare"
    use_hub: bool = False
    split_fractions: list[float] = Field([0.9, 0.05, 0.05], min_length=3, max_length=3)
    tokenizer: Literal["char", "bpe"] = "char"
    vocab_size: int = Field(2000, ge=16)
    window: int = Field(256, ge=2)
    sample_prompt: str = Field("ROMEO:", min_length=1)
    max_new_tokens: int = Field(300, ge=1, le=10_000)
    temperature: float = Field(0.8, ge=0.0, le=100.0)
    top_k: int = Field(0, ge=0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_prompt_characters: int = Field(100_000, ge=1)

    @model_validator(mode="after")
    def _windows_can_be_scored(self) -> TextGenerationConfig:
        if self.max_prompt_characters < self.window + 1:
            raise ValueError(
                f"max_prompt_characters ({self.max_prompt_characters}) must hold a window ({self.window + 1})"
            )
        return self

    @field_validator("split_fractions")
    @classmethod
    def _fractions_sum_to_one(cls, fractions: list[float]) -> list[float]:
        if any(f <= 0 for f in fractions) or not math.isclose(sum(fractions), 1.0, abs_tol=1e-6):
            raise ValueError(f"must be three positive shares summing to 1, got {fractions}")
        return fractions


class GenerationOptions(BaseModel):
    """What ``seqops predict --option`` may change (a row's own fields win over these)."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int | None = Field(None, ge=1, le=10_000)
    temperature: float | None = Field(None, ge=0.0, le=100.0)
    top_k: int | None = Field(None, ge=0)
    top_p: float | None = Field(None, gt=0.0, le=1.0)
    seed: int | None = Field(None, ge=0, lt=2**32)


class TextGeneration(Task):
    """Language modelling: predict the next token of a text; generate by sampling."""

    name = "text_generation"
    family = "language_model"
    config_model = TextGenerationConfig
    promotion_metric = "bits_per_character"
    promotion_direction = "min"
    summary_metrics = ("bits_per_character", "nats_per_character", "perplexity")
    search_space = {
        "model.embedding_dim": {"low": 32, "high": 256, "log": True},
        "model.hidden_size": {"low": 128, "high": 512, "log": True},
        "model.num_layers": {"low": 1, "high": 3},
        "model.dropout": {"low": 0.0, "high": 0.3},
        "train.learning_rate": {"low": 1e-3, "high": 1e-2, "log": True},
    }
    inference_options = GenerationOptions

    def _local(self, config: TextGenerationConfig) -> str | None:
        folder = config.data_dir / "tinyshakespeare" / "input.txt" if config.data_dir else None
        return read_text(folder) if folder is not None and folder.is_file() else None

    def _hub(self, config: TextGenerationConfig) -> str:
        hub = load_from_hub(config.hub_id, "set text_file, or data_dir to a folder with tinyshakespeare/")
        return "".join(
            "".join(hub[split]["text"]) for split in ("train", "validation", "test") if split in hub
        )

    def prepare(self, config: TextGenerationConfig) -> PreparedData:
        """Read the first available text, fit the vocabulary on the training part, cut windows and cache."""
        user = config.text_file
        sources = [
            (f"text_file {user}", lambda: read_text(user) if user is not None else None),
            *([(f"hub {config.hub_id}", lambda: self._hub(config))] if config.use_hub else []),
            (f"data_dir {config.data_dir}", lambda: self._local(config)),
            (f"hub {config.hub_id}", lambda: self._hub(config)),
        ]
        source, text = first_available(sources)
        key = fingerprint(CACHE_VERSION, config.model_dump(exclude={"cache_dir", "data_dir"}), text)
        cache = Path(config.cache_dir) / self.name / key
        return load_prepared(cache, self, source, key) or self._build(text, config, source, key, cache)

    def _build(
        self, text: str, config: TextGenerationConfig, source: str, key: str, cache: Path
    ) -> PreparedData:
        first, second = (
            int(x) for x in np.cumsum([int(len(text) * share) for share in config.split_fractions[:2]])
        )
        parts = {"train": text[:first], "validation": text[first:second], "test": text[second:]}
        tokenizer = None
        if config.tokenizer == "bpe":
            tokenizer = train_bpe(
                parts["train"].splitlines(keepends=True), config.vocab_size, 2, lowercase=False
            )
        settings = config.model_dump(
            include={"max_new_tokens", "temperature", "top_k", "top_p", "sample_prompt"}
        )
        characters = "".join(sorted(set(parts["train"]))) if tokenizer is None else ""
        codec = GenerationCodec(
            {
                "tokenizer": config.tokenizer,
                "characters": characters,
                "max_prompt_characters": config.max_prompt_characters,
                **settings,
            },
            tokenizer,
        )
        splits, stats = (
            {},
            {"characters": float(len(text)), "vocab_size": float(codec.network_shape()["vocab_size"])},
        )
        for split, part in parts.items():
            ids, unknown = codec.ids(part)
            span = config.window + 1
            count = (len(ids) - 1) // config.window  # full windows, each overlapping the next by one token
            windows = [ids[i * config.window : i * config.window + span] for i in range(count)]
            windows = windows[: config.limit or None]
            if not windows:
                raise DataSourceError(
                    f"{source}: the {split} part is shorter than one window of {span} tokens"
                )
            splits[split] = datasets.Dataset.from_dict({"input_ids": windows})
            stats |= {f"{split}_windows": float(len(windows)), f"{split}_unknown_characters": float(unknown)}
        prepared = PreparedData(datasets.DatasetDict(splits), codec, source, key, stats)
        return save_prepared(prepared, cache)

    def load_codec(self, directory: Path) -> GenerationCodec:
        """Load the codec saved in a bundle."""
        return GenerationCodec.load(directory)

    def references(self, split: Any, codec: GenerationCodec) -> tuple[list[dict[str, Any]], None]:
        """Each window as a row to score (``text``); scores need no references."""
        windows = split.with_format("numpy")["input_ids"]
        return [{"text": codec.text([int(i) for i in window])} for window in windows], None

    def metrics(self, predictions: list[dict[str, Any]], references: None) -> dict[str, float]:
        """Cross-entropy per character in nats and bits, and perplexity per character, over every row.

        Raises:
            ValueError: If a row could not be scored: every window of the split must count.
        """
        failed = [p["error"] for p in predictions if "error" in p]
        if failed:
            raise ValueError(f"{len(failed)} of {len(predictions)} texts could not be scored: {failed[0]}")
        scored = predictions
        nats = sum(p["nats"] for p in scored)
        characters = sum(p["characters"] for p in scored)
        return {
            "nats_per_character": nats / characters,
            "bits_per_character": nats / characters / math.log(2),
            "perplexity": math.exp(nats / characters),
        }

    def baselines(self, prepared: PreparedData) -> dict[str, Callable[[], dict[str, float]]]:
        """A smoothed n-gram model of the training tokens (``tasks.text_generation.baseline``)."""
        return {"ngram": partial(ngram_baseline, self, prepared)}

    def training_samples(self, run: GraphRunner, codec: GenerationCodec) -> dict[str, str]:
        """The ``sample_prompt`` continued (temperature 0.8, seed 0): logged after every epoch."""
        return {"sample": sample_text(run, codec, codec.settings["sample_prompt"], temperature=0.8, seed=0)}

    def diagnostics(self, evaluation: Evaluation) -> list[Artifact]:
        """Continuations of a few prompts at three temperatures (seeded: the same every run)."""
        prompts = [evaluation.codec.settings["sample_prompt"], "First Citizen:\n", "The king", "\n"]
        rows = [{"prompt": p, "temperature": t, "seed": 0} for p in prompts for t in (0.0, 0.5, 1.0)]
        texts = evaluation.predict(rows)
        samples = {
            "prompt": [row["prompt"] for row in rows],
            "temperature": [row["temperature"] for row in rows],
            "continuation": [p.get("text", p.get("error", "")) for p in texts],
        }
        return [Table("samples.json", samples)]


def sample_text(run: GraphRunner, codec: GenerationCodec, prompt: str, temperature: float, seed: int) -> str:
    """One continuation of ``prompt`` with the codec's default length, top-k and top-p."""
    ids, _ = codec.ids(prompt)
    if not ids:
        return ""
    settings = {name: np.array([codec.settings[name]]) for name in ("max_new_tokens", "top_k", "top_p")}
    sampling = SamplingSettings(**settings, temperature=np.array([temperature]), seed=np.array([seed]))
    generated, _ = generate(run, [np.array(ids)], sampling)
    return prompt + codec.continuation(ids, generated[0])


TASK = TextGeneration()
