"""A small language model of simple sentences, trained once per session (the text-generation tests, the fuzz
tests and the malformed-row corpus share it)."""

import numpy as np
import pytest
from task_models import fit_bundle

from tasks import get_task

SENTENCES = [
    "the cat sat on the mat. ",
    "a dog sat on the log. ",
    "the dog ate a bone. ",
    "a cat ran to the mat. ",
]


@pytest.fixture(scope="session")
def text_file(tmp_path_factory):
    """Simple repeated sentences; the test part (last 10%) holds a character never seen in training."""
    rng = np.random.default_rng(0)
    text = "".join(SENTENCES[i] for i in rng.integers(0, len(SENTENCES), 400))
    start = int(len(text) * 0.8) + int(len(text) * 0.1)
    text = text[: start + 40] + "~" + text[start + 41 :]
    path = tmp_path_factory.mktemp("text") / "corpus.txt"
    path.write_text(text)
    return path


def prepare_text_generation(path, cache, **settings):
    task = get_task("text_generation")
    config = task.config(
        text_file=path,
        cache_dir=cache,
        window=32,
        split_fractions=[0.8, 0.1, 0.1],
        max_new_tokens=16,
        sample_prompt="the cat",
        **settings,
    )
    return task, task.prepare(config)


@pytest.fixture(scope="session")
def text_generation_model(text_file, tmp_path_factory):
    """A small LSTM language model of the sentences: (task, prepared, bundle, network)."""
    work = tmp_path_factory.mktemp("language_model")
    task, prepared = prepare_text_generation(text_file, work / "cache")
    bundle, network = fit_bundle(
        "text_generation",
        prepared,
        work,
        {"embedding_dim": 16, "hidden_size": 48},
        {"max_epochs": 6, "batch_size": 16, "learning_rate": 0.01, "patience": 6},
    )
    return task, prepared, bundle, network
