import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks import get_task
from tasks.common.word_lookup import plain_word_level, tokenizer_ids
from tasks.sentiment.task import train_tokenizer

CORPUS = [
    "a gripping , funny film",
    "it 's not_bad at all ... 10/10",
    "Naïve and dull ; the ﬁnale drags",
    "İstanbul scenes , café talk",
] * 3
# Plain ASCII, the whitespace and control characters where Python's and Rust's regex classes part,
# letters NFKC or lowercasing change, and the special tokens' own text.
PIECES = [*"abcXYZ019_ .,;'!?-/\t\n\r", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "é", "ﬁ", "İ", "ß", "Ⅻ"]
PIECES += ["[PAD]", "[unk]", "film", "funny", "FUNNY", "not_bad", "10/10"]


def tokenizer(kind: str):
    config = get_task("sentiment").config(tokenizer=kind, vocab_size=200, min_frequency=1)
    return train_tokenizer(CORPUS, config)


WORD = tokenizer("word")


@pytest.mark.parametrize(("kind", "fast"), [("word", True), ("bpe", False)])
def test_the_regex_path_applies_to_the_word_level_tokenizer_sentiment_trains(kind, fast):
    assert plain_word_level(json.loads(tokenizer(kind).to_str())) is fast


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.sampled_from(PIECES), max_size=12).map("".join), min_size=1, max_size=8))
def test_word_ids_equal_the_tokenizers_own_for_any_text(texts):
    assert tokenizer_ids(WORD)(texts) == [encoding.ids for encoding in WORD.encode_batch_fast(texts)]


def test_bpe_ids_are_the_tokenizers_own():
    bpe = tokenizer("bpe")
    assert tokenizer_ids(bpe)(CORPUS) == [encoding.ids for encoding in bpe.encode_batch_fast(CORPUS)]
