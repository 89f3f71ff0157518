"""The language-model codec: prompts to token ids, sampled ids back to text; texts scored per character.

A row holding ``prompt`` is continued (``text``); a row holding ``text`` is scored (nats and bits per
character), which is how the test split is evaluated. Characters the model never saw in training (or
BPE's unknown token) are left out of what the model reads, and counted in ``unknown_characters``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field
from tokenizers import Tokenizer
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before Python 3.12

from tasks.common.assets import build_codec, read_asset
from tasks.common.base import Codec, GraphRunner
from tasks.common.errors import InvalidRow
from tasks.common.subwords import UNK, load_tokenizer
from tasks.text_generation.sampling import SamplingSettings, generate, score

SAMPLING_FIELDS = {"max_new_tokens": int, "temperature": float, "top_k": int, "top_p": float, "seed": int}
UNSET = -1.0  # a row that leaves a setting to the job or the model (every setting is at least 0)
# Seeds stay below 2**32 so that they pass exactly through the float arrays of a batch.
SAMPLING_RANGES = {
    "max_new_tokens": (1, 10_000),
    "temperature": (0, 100),
    "top_k": (0, 1 << 20),
    "top_p": (0, 1),
    "seed": (0, 2**32 - 1),
}


class GenerationSettings(TypedDict):
    """What ``codec.json`` holds: the vocabulary and the default sampling settings."""

    tokenizer: Literal["char", "bpe"]
    characters: str  # the character vocabulary, in id order (char tokenizer)
    max_new_tokens: Annotated[int, Field(ge=1)]
    temperature: Annotated[float, Field(ge=0.0)]
    top_k: Annotated[int, Field(ge=0)]
    top_p: Annotated[float, Field(gt=0.0, le=1.0)]
    max_prompt_characters: Annotated[int, Field(ge=1)]
    sample_prompt: Annotated[str, Field(min_length=1)]


class GenerationCodec(Codec):
    """Text to token ids (characters, or BPE pieces) and sampled ids back to text."""

    graphs = ("start", "step")

    def __init__(self, settings: dict[str, Any], tokenizer: Tokenizer | None = None):
        self.settings = settings
        self.tokenizer = tokenizer
        self.characters = {character: index for index, character in enumerate(settings["characters"])}
        if settings["tokenizer"] == "bpe" and tokenizer is None:
            raise ValueError("a BPE codec needs its tokenizer")
        self.unknown = tokenizer.token_to_id(UNK) if tokenizer else None

    def ids(self, text: str) -> tuple[list[int], int]:
        """Token ids of ``text``, and the characters left out because the vocabulary lacks them."""
        if self.tokenizer is None:
            known = [self.characters.get(character) for character in text]
            return [i for i in known if i is not None], sum(i is None for i in known)
        encoding = self.tokenizer.encode(text)
        unknown = [i for i, token in enumerate(encoding.ids) if token == self.unknown]
        skipped = sum(end - start for start, end in (encoding.offsets[i] for i in unknown))
        return [token for token in encoding.ids if token != self.unknown], skipped

    def text(self, ids: list[int]) -> str:
        """The text of token ids."""
        if self.tokenizer is None:
            return "".join(self.settings["characters"][i] for i in ids)
        return self.tokenizer.decode(ids)

    def continuation(self, prompt: list[int], generated: list[int]) -> str:
        """The text of ``generated`` as it continues ``prompt``.

        A subword decoder drops a piece's leading space at the start of a text, so both are decoded
        together and the prompt's text cut off.
        """
        if self.tokenizer is None:
            return self.text(generated)
        return self.text(prompt + generated)[len(self.text(prompt)) :]

    def parse(self, row: dict[str, Any]) -> dict[str, Any]:
        """A ``prompt`` to continue (with optional sampling fields) or a ``text`` to score."""
        present = [field for field in ("prompt", "text") if not missing(row.get(field))]
        if len(present) != 1:
            raise InvalidRow("a row needs either 'prompt' (to continue) or 'text' (to score)")
        field = present[0]
        value = row[field]
        if not isinstance(value, str):
            raise InvalidRow(f"'{field}' must be a string, got {type(value).__name__}")
        try:  # a JSON escape can make a lone surrogate, which no tokenizer takes
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRow(f"invalid Unicode (a lone surrogate) in field '{field}'") from None
        limit = self.settings["max_prompt_characters"]
        if len(value) > limit:
            raise InvalidRow(f"'{field}' has {len(value)} characters, more than {limit}")
        ids, skipped = self.ids(value)
        needed = 1 if field == "prompt" else 2
        if len(ids) < needed:
            what = "no character" if not ids else "one token"
            raise InvalidRow(f"'{field}' has {what} the model knows; it needs at least {needed}")
        # What a score covers: the characters of the tokens after the first (unknown ones are not predicted).
        characters = len(value) - skipped - len(self.text(ids[:1]))
        item = {"score": field == "text", "ids": ids, "unknown": skipped, "characters": characters}
        return item | {name: sampling_field(row, name, kind) for name, kind in SAMPLING_FIELDS.items()}

    def item_length(self, item: dict[str, Any]) -> int:
        """Steps the item takes: its tokens, plus the tokens it asks for."""
        return len(item["ids"]) + (item["max_new_tokens"] or self.settings["max_new_tokens"])

    def encode(self, items: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """Padded ``input_ids``, ``lengths`` (what input profiles measure) and each row's settings."""
        lengths = np.array([len(item["ids"]) for item in items], dtype=np.int64)
        input_ids = np.zeros((len(items), int(lengths.max())), dtype=np.int64)
        for row, item in enumerate(items):
            input_ids[row, : len(item["ids"])] = item["ids"]
        feeds = {"input_ids": input_ids, "lengths": lengths}
        for name in ("score", "unknown", "characters"):
            feeds[name] = np.array([item[name] for item in items])
        for name in SAMPLING_FIELDS:
            feeds[name] = np.array([UNSET if item[name] is None else item[name] for item in items], float)
        return feeds

    def infer(self, run: GraphRunner, feeds: dict[str, np.ndarray], **options: Any) -> dict[str, Any]:
        """Score ``text`` rows; continue the others (row settings, else ``options``, else the defaults)."""
        scored, continued = np.flatnonzero(feeds["score"]), np.flatnonzero(~feeds["score"])
        texts = [feeds["input_ids"][row, : feeds["lengths"][row]] for row in range(len(feeds["lengths"]))]
        nats = np.zeros(len(texts))
        if scored.size:
            nats[scored] = score(run, [texts[row] for row in scored])
        generated: list[list[int]] = [[] for _ in texts]
        if continued.size:
            defaults = {**self.settings, "seed": 0}
            settings = {
                name: np.array(
                    [resolve(feeds[name][row], options.get(name), defaults[name]) for row in continued], kind
                )
                for name, kind in SAMPLING_FIELDS.items()
            }
            tokens, finite = generate(run, [texts[r] for r in continued], SamplingSettings(**settings))
            for row, row_tokens, row_finite in zip(continued, tokens, finite, strict=True):
                generated[row] = row_tokens
                nats[row] = 0.0 if row_finite else np.nan  # non-finite logits make the row an error
        return {
            "nats": nats,
            "generated": generated,
            "prompts": texts,
            **{k: feeds[k] for k in ("score", "unknown", "characters")},
        }

    def decode(self, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        """``text`` for a continued prompt; ``nats``, ``characters``, ``bits_per_character`` if scored."""
        records = []
        for row, scored in enumerate(outputs["score"]):
            record: dict[str, Any] = {"unknown_characters": int(outputs["unknown"][row])}
            if scored:
                characters = max(int(outputs["characters"][row]), 1)
                nats = float(outputs["nats"][row])
                record |= {"nats": nats, "characters": characters}
                record["bits_per_character"] = nats / characters / math.log(2)
            else:
                record["text"] = self.continuation(list(outputs["prompts"][row]), outputs["generated"][row])
            records.append(record)
        return records

    def network_shape(self) -> dict[str, int]:
        """The vocabulary size."""
        size = self.tokenizer.get_vocab_size() if self.tokenizer else len(self.settings["characters"])
        return {"vocab_size": size}

    def save(self, directory: Path) -> None:
        """Write ``codec.json`` (and ``tokenizer.json`` for BPE)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "codec.json").write_text(json.dumps(self.settings, indent=2))
        if self.tokenizer is not None:
            self.tokenizer.save(str(directory / "tokenizer.json"))

    @classmethod
    def load(cls, directory: Path) -> GenerationCodec:
        """Load a codec written by ``save``.

        Raises:
            BundleError: Naming the file that is missing, unreadable or mistyped.
        """
        settings = dict(read_asset(directory, "codec.json", GenerationSettings))
        tokenizer = load_tokenizer(directory, "tokenizer.json") if settings["tokenizer"] == "bpe" else None
        return build_codec(cls, directory / "codec.json", settings, tokenizer)


def sampling_field(row: dict[str, Any], name: str, kind: type) -> float | int | None:
    """A row's sampling setting, checked (``None`` when the row leaves it to the defaults).

    Raises:
        InvalidRow: For a value of the wrong type or out of range.
    """
    value = row.get(name)
    if absent(value):
        return None
    if isinstance(value, str):  # a CSV field
        try:
            value = float(value)
        except ValueError:
            value = None
    low, high = SAMPLING_RANGES[name]
    wrong = isinstance(value, bool) or not isinstance(value, int | float)
    if wrong or (
        kind is int and isinstance(value, float) and math.isfinite(value) and not value.is_integer()
    ):
        kind_name = "an integer" if kind is int else "a number"
        raise InvalidRow(f"'{name}' must be {kind_name}, got {row[name]!r:.50}")
    if not math.isfinite(value) if isinstance(value, float) else abs(value) > 2**64:  # beyond every range
        raise InvalidRow(f"'{name}' is {str(value)[:20]}, outside [{low}, {high}]")
    value = kind(value)
    if not (low <= value <= high) or (name == "top_p" and value == 0):
        raise InvalidRow(
            f"'{name}' is {value}, outside [{low}, {high}]" + (" (and above 0)" * (name == "top_p"))
        )
    return value


def missing(value: Any) -> bool:
    """A field left out: missing, null, or the NaN a table fills a gap with."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def absent(value: Any) -> bool:
    """A setting left to the defaults: a missing field, or an empty CSV field."""
    return missing(value) or value == ""


def resolve(row_value: float, option: Any, default: Any) -> Any:
    """The row's own setting, else the job's option, else the model's default."""
    if row_value != UNSET:
        return row_value
    return default if option is None else option
