"""The translation codec: source text to BPE ids, decoder graphs driven by beam search, ids to text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import ConfigDict, Field
from tokenizers import Tokenizer
from typing_extensions import TypedDict  # pydantic reads TypedDicts from here before Python 3.12

from tasks.common.assets import build_codec, read_asset
from tasks.common.base import Codec, GraphRunner
from tasks.common.decoding import Hypotheses, beam_search
from tasks.common.errors import InvalidRow
from tasks.common.subwords import BOS, EOS, load_tokenizer, pad_ids

MAX_HYPOTHESES = 512  # hypotheses decoded at once (inputs x beam width): bounds memory


class DecodingSettings(TypedDict):
    """What ``codec.json`` holds for a translator (languages and casing are kept for the record)."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    max_input_tokens: Annotated[int, Field(ge=1)]
    overlong: Literal["truncate", "reject"]
    beam_width: Annotated[int, Field(ge=1)]
    length_penalty: Annotated[float, Field(ge=0.0)]
    max_output_ratio: Annotated[float, Field(gt=0.0)]


class TranslationCodec(Codec):
    """Source text to BPE ids; decoded target ids back to detokenised text with its score."""

    graphs = ("encoder", "decoder_step")
    unknown_id = 1  # [UNK], right after [PAD]

    def __init__(self, source_tokenizer: Tokenizer, target_tokenizer: Tokenizer, settings: dict[str, Any]):
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.settings = settings
        self.bos, self.eos = target_tokenizer.token_to_id(BOS), target_tokenizer.token_to_id(EOS)
        if self.bos is None or self.eos is None:
            raise ValueError(f"the target tokenizer lacks the {BOS} and {EOS} tokens decoding needs")

    def parse(self, row: dict[str, Any]) -> tuple[list[int], bool]:
        """Tokenise ``text``; an over-long input is truncated (and flagged) or rejected, as configured."""
        text = row.get("text")
        if not isinstance(text, str):
            raise InvalidRow(f"'text' must be a string, got {type(text).__name__}")
        try:  # a JSON escape can make a lone surrogate, which the tokenizer cannot take
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRow("invalid Unicode (a lone surrogate) in field 'text'") from None
        ids = self.source_tokenizer.encode(text).ids if text.strip() else []
        if not ids:
            raise InvalidRow("'text' is empty")
        limit = self.settings["max_input_tokens"]
        if len(ids) > limit and self.settings["overlong"] == "reject":
            raise InvalidRow(f"'text' has {len(ids)} tokens, more than max_input_tokens {limit}")
        return ids[:limit], len(ids) > limit

    def item_length(self, item: tuple[list[int], bool]) -> int:
        """Source tokens of a parsed input."""
        return len(item[0])

    def encode(self, items: list[tuple[list[int], bool]]) -> dict[str, np.ndarray]:
        """Right-padded ``input_ids`` and ``lengths`` (the encoder's inputs) plus the truncation flags."""
        return pad_ids([ids for ids, _ in items]) | {"truncated": np.array([t for _, t in items])}

    def infer(
        self,
        run: GraphRunner,
        feeds: dict[str, np.ndarray],
        beam_width: int | None = None,
        keep_attention: bool = False,
    ) -> dict[str, Any]:
        """Encode once, then beam-search the decoder step (``beam_width`` 1 is greedy).

        Args:
            run: Runs the ``encoder`` and ``decoder_step`` graphs.
            feeds: What ``encode`` returned.
            beam_width: Overrides the bundle's beam width.
            keep_attention: Also return attention weights and tokens (for heat maps).
        """
        width = beam_width or self.settings["beam_width"]
        group = max(1, MAX_HYPOTHESES // width)  # memory grows with inputs x beams
        parts = []
        for start in range(0, len(feeds["lengths"]), group):
            lengths = feeds["lengths"][start : start + group]
            parts.append(
                beam_search(
                    run,
                    {
                        "input_ids": feeds["input_ids"][start : start + group, : lengths.max()],
                        "lengths": lengths,
                    },
                    bos=self.bos,
                    eos=self.eos,
                    beam_width=width,
                    length_penalty=self.settings["length_penalty"],
                    max_steps=(lengths * self.settings["max_output_ratio"] + 10).astype(int),
                    keep_attention=keep_attention,
                )
            )
        hypotheses = Hypotheses(
            [tokens for part in parts for tokens in part.tokens],
            np.concatenate([part.scores for part in parts]),
            [weights for part in parts for weights in part.attention] if keep_attention else None,
        )
        return {"hypotheses": hypotheses, "input_ids": feeds["input_ids"], "truncated": feeds["truncated"]}

    def decode(self, outputs: dict[str, Any]) -> list[dict[str, Any]]:
        """Detokenised ``translation``, its length-normalised log-probability ``score`` and the flag."""
        hypotheses: Hypotheses = outputs["hypotheses"]
        texts = self.target_tokenizer.decode_batch(hypotheses.tokens)
        records = [
            {"translation": text, "score": float(score), "source_truncated": bool(truncated)}
            for text, score, truncated in zip(texts, hypotheses.scores, outputs["truncated"], strict=True)
        ]
        if hypotheses.attention is not None:
            for record, ids, tokens, weights in zip(
                records, outputs["input_ids"], hypotheses.tokens, hypotheses.attention, strict=True
            ):
                source = [self.source_tokenizer.id_to_token(int(i)) for i in ids if i]
                record["source_tokens"] = source
                record["target_tokens"] = [self.target_tokenizer.id_to_token(i) for i in tokens] + [EOS]
                record["attention"] = weights[: len(tokens) + 1, : len(source)].tolist()
        return records

    def network_shape(self) -> dict[str, int]:
        """Source and target vocabulary sizes."""
        return {
            "vocab_size": self.source_tokenizer.get_vocab_size(),
            "target_vocab_size": self.target_tokenizer.get_vocab_size(),
        }

    def save(self, directory: Path) -> None:
        """Write both tokenizers and the decoding settings."""
        directory.mkdir(parents=True, exist_ok=True)
        self.source_tokenizer.save(str(directory / "source_tokenizer.json"))
        self.target_tokenizer.save(str(directory / "target_tokenizer.json"))
        (directory / "codec.json").write_text(json.dumps(self.settings, indent=2))

    @classmethod
    def load(cls, directory: Path) -> TranslationCodec:
        """Load a codec written by ``save``.

        Raises:
            BundleError: Naming the file that is missing, unreadable or mistyped.
        """
        settings = read_asset(directory, "codec.json", DecodingSettings)
        source = load_tokenizer(directory, "source_tokenizer.json")
        target = load_tokenizer(directory, "target_tokenizer.json")
        return build_codec(cls, directory / "codec.json", source, target, dict(settings))
