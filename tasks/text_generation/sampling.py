"""Sampling and scoring over a language model's step graphs, in numpy.

Like translation's beam search, this only sees ``run(graph, feeds) -> outputs``, so the same code
generates with onnxruntime (serving, evaluation) and with the PyTorch network (export parity, the
samples logged while training, benchmarks).

Graph contract:
    ``start``: ``token`` (batch,) and the sampling inputs -> ``logits`` (batch, vocabulary),
    ``next_state`` (batch, state) and ``next_token`` (batch,): the first step, from the zero state.
    ``step``: ``token`` (batch,), ``state`` (batch, state) and the sampling inputs -> the same.
    The sampling inputs, one per row: ``temperature``, ``top_k``, ``top_p`` and ``draw``, a uniform
    number that picks ``next_token`` from the filtered distribution (``next_tokens``' rules, in the
    graph). Graphs exported before sampling moved into them take only ``token`` (and ``state``) and
    give no ``next_token``: ``next_tokens`` then samples here, from their logits, with the same draws.

Each row draws from its own random generator, seeded per row, so a row's text never depends on
which rows share its batch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.common.base import GraphRunner
from tasks.common.decoding import log_softmax


@dataclass
class SamplingSettings:
    """Per-row sampling settings, one entry per row.

    Attributes:
        max_new_tokens: Tokens to generate after the prompt (at least 1).
        temperature: Divides the logits; 0 takes the most likely token (greedy).
        top_k: Sample among the k most likely tokens only; 0 keeps them all.
        top_p: Sample among the most likely tokens whose probabilities sum to at least p (nucleus).
        seed: Seed of the row's random generator.
    """

    max_new_tokens: np.ndarray
    temperature: np.ndarray
    top_k: np.ndarray
    top_p: np.ndarray
    seed: np.ndarray


def next_tokens(
    logits: np.ndarray,
    temperature: np.ndarray,
    top_k: np.ndarray,
    top_p: np.ndarray,
    draws: np.ndarray,
) -> np.ndarray:
    """Draw one token per row from its logits, after temperature, top-k and top-p (nucleus) filtering.

    Args:
        logits: ``(rows, vocabulary)``.
        temperature: Per row; 0 or less is greedy.
        top_k: Per row; 0 keeps every token.
        top_p: Per row, in (0, 1]; 1 keeps every token.
        draws: Per row, a uniform number in [0, 1) that picks the token by inverse CDF.

    Returns:
        Token ids, shape ``(rows,)``.
    """
    logits = logits.astype(np.float64)
    rows, vocabulary = logits.shape
    greedy = temperature <= 0
    with np.errstate(over="ignore"):  # a tiny temperature sends every logit but the best to -inf
        scaled = (logits - logits.max(axis=1, keepdims=True)) / np.where(greedy, 1.0, temperature)[:, None]
    descending = -np.sort(-scaled, axis=1)
    k = np.where((top_k > 0) & (top_k < vocabulary), top_k, vocabulary)
    kth = descending[np.arange(rows), k - 1]
    scaled = np.where(scaled >= kth[:, None], scaled, -np.inf)
    probabilities = np.exp(scaled - scaled.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    ranked = np.take_along_axis(probabilities, order, axis=1)
    before = np.cumsum(ranked, axis=1) - ranked  # mass of the tokens ranked above each one
    ranked = np.where(before < top_p[:, None], ranked, 0.0)  # the first token always stays
    ranked /= ranked.sum(axis=1, keepdims=True)
    kept = (ranked > 0).sum(axis=1)  # rounding in the sum must never reach a token filtered out
    picked = np.minimum((np.cumsum(ranked, axis=1) < draws[:, None]).sum(axis=1), kept - 1)
    sampled = order[np.arange(rows), picked]
    return np.where(greedy, logits.argmax(axis=1), sampled)


def sampling_inputs(
    settings: SamplingSettings, rows: np.ndarray, drawing: np.ndarray, generators: list[np.random.Generator]
) -> dict[str, np.ndarray]:
    """The sampling inputs of a call for ``rows``; those ``drawing`` take one draw from their generator."""
    draws = [generators[row].random() if draws else 0.0 for row, draws in zip(rows, drawing, strict=True)]
    return {
        "temperature": settings.temperature[rows].astype(np.float64),
        "top_k": settings.top_k[rows].astype(np.int64),
        "top_p": settings.top_p[rows].astype(np.float64),
        "draw": np.array(draws, np.float64),
    }


def greedy_sampling(batch: int) -> dict[str, np.ndarray]:
    """Sampling inputs that take each row's most likely token (scoring only needs the logits)."""
    rows = np.arange(batch)
    settings = SamplingSettings(rows, np.zeros(batch), np.zeros(batch), np.ones(batch), rows)
    return sampling_inputs(settings, rows, np.zeros(batch, dtype=bool), [])


def generate(
    run: GraphRunner, prompts: list[np.ndarray], settings: SamplingSettings
) -> tuple[list[list[int]], np.ndarray]:
    """Continue each prompt: feed its tokens through the graphs, then sample ``max_new_tokens`` more.

    Prompts of different lengths share a batch: a row still reading its prompt is fed its next
    prompt token; rows leave the batch once they have their tokens. A row draws from its generator
    once for each token it samples.

    Args:
        run: Runs the ``start`` and ``step`` graphs.
        prompts: Token ids per row, each at least one token long.
        settings: Per-row sampling settings.

    Returns:
        The generated token ids of each row (without the prompt), and whether every logit the row saw
        was finite (a row that was not gets no meaningful text).
    """
    generators = [np.random.default_rng(int(seed)) for seed in settings.seed]
    lengths = np.array([len(prompt) for prompt in prompts])
    generated: list[list[int]] = [[] for _ in prompts]
    finite = np.ones(len(prompts), dtype=bool)
    active = np.arange(len(prompts))
    sampling = sampling_inputs(settings, active, lengths <= 1, generators)
    first = np.array([prompt[0] for prompt in prompts], dtype=np.int64)
    outputs = run("start", {"token": first, **sampling})
    position = 1  # tokens every active row has been fed
    while active.size:
        finite[active] &= np.isfinite(outputs["logits"]).all(axis=1)
        reading = position < lengths[active]
        tokens = np.zeros(active.size, dtype=np.int64)
        for slot in np.flatnonzero(reading):
            tokens[slot] = prompts[active[slot]][position]
        writing = np.flatnonzero(~reading)
        if writing.size:
            sampled = outputs.get("next_token")
            if sampled is None:  # a graph exported before sampling moved into it
                sampled = np.zeros(active.size, dtype=np.int64)
                sampled[writing] = next_tokens(
                    outputs["logits"][writing],
                    *(sampling[name][writing] for name in ("temperature", "top_k", "top_p", "draw")),
                )
            tokens[writing] = sampled[writing]
            for row, token in zip(active[writing], tokens[writing], strict=True):
                generated[row].append(int(token))
        keep = np.array([len(generated[row]) < settings.max_new_tokens[row] for row in active])
        active, tokens = active[keep], tokens[keep]
        if not active.size:
            break
        position += 1
        sampling = sampling_inputs(settings, active, lengths[active] <= position, generators)
        outputs = run("step", {"token": tokens, "state": outputs["next_state"][keep], **sampling})
    return generated, finite


def score(run: GraphRunner, texts: list[np.ndarray]) -> np.ndarray:
    """Negative log-likelihood (nats) of each text's tokens after its first, fed through the graphs.

    Args:
        run: Runs the ``start`` and ``step`` graphs.
        texts: Token ids per row, each at least two tokens long.

    Returns:
        Summed nats per row (over ``len(text) - 1`` predicted tokens).
    """
    lengths = np.array([len(text) for text in texts])
    padded = np.zeros((len(texts), lengths.max()), dtype=np.int64)
    for row, text in enumerate(texts):
        padded[row, : len(text)] = text
    nats = np.zeros(len(texts))
    active = np.arange(len(texts))
    outputs = run("start", {"token": padded[:, 0], **greedy_sampling(len(texts))})
    for position in range(1, int(lengths.max())):
        log_probabilities = log_softmax(outputs["logits"].astype(np.float64))
        nats[active] -= log_probabilities[np.arange(active.size), padded[active, position]]
        keep = lengths[active] > position + 1
        active = active[keep]
        if not active.size:
            break
        feeds = {"token": padded[active, position], "state": outputs["next_state"][keep]}
        outputs = run("step", feeds | greedy_sampling(active.size))
    return nats
