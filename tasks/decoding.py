"""Greedy and beam-search decoding over an encoder graph and a one-step decoder graph, in numpy.

The search only sees a ``run(graph, feeds) -> outputs`` function, so the very same code decodes with
onnxruntime sessions (serving, evaluation) and with the PyTorch modules (export parity, benchmarks).

Graph contract:
    ``encoder``: ``input_ids`` (batch, source), ``lengths`` (batch,) -> ``memory`` (batch, source, m),
    ``keys`` (batch, source, k) and ``state`` (batch, s), the decoder's first state.
    ``decoder_step``: ``token`` (batch,), ``state``, ``memory``, ``keys``, ``source_mask`` (batch, source)
    -> ``logits`` (batch, vocabulary), ``next_state`` and ``attention`` (batch, source).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.base import GraphRunner


@dataclass
class Hypotheses:
    """The best hypothesis of every input.

    Attributes:
        tokens: Output token ids, without the begin and end markers.
        scores: Log-probability divided by length ** length_penalty (the ranking score).
        attention: Per input, attention weights ``(output steps, source steps)``, when asked for.
    """

    tokens: list[list[int]]
    scores: np.ndarray
    attention: list[np.ndarray] | None = None


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise log-softmax, stable for large logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def beam_search(
    run: GraphRunner,
    encoder_feeds: dict[str, np.ndarray],
    bos: int,
    eos: int,
    beam_width: int,
    length_penalty: float,
    max_steps: np.ndarray,
    keep_attention: bool = False,
) -> Hypotheses:
    """Decode a batch, keeping ``beam_width`` hypotheses per input (1 is greedy decoding).

    Finished hypotheses stay in the beam with a frozen score; at the end each input's hypotheses are
    ranked by length-normalised log-probability.

    Args:
        run: Runs a named graph on named arrays.
        encoder_feeds: ``input_ids`` and ``lengths`` of the batch.
        bos: Begin-of-sentence id fed at the first step.
        eos: End-of-sentence id.
        beam_width: Hypotheses kept per input.
        length_penalty: Exponent of the length normalisation (0 ranks by raw log-probability).
        max_steps: Per input, the most tokens to produce (an end marker is forced at the limit).
        keep_attention: Also return the best hypotheses' attention weights.

    Returns:
        The best hypothesis per input.
    """
    encoded = run("encoder", encoder_feeds)
    batch, width = len(encoder_feeds["lengths"]), beam_width
    source_steps = encoder_feeds["input_ids"].shape[1]
    mask = np.arange(source_steps)[None, :] < encoder_feeds["lengths"][:, None]
    expand = lambda array: np.repeat(array, width, axis=0)  # noqa: E731 - a one-line local helper
    memory, keys, state, mask = (
        expand(a) for a in (encoded["memory"], encoded["keys"], encoded["state"], mask)
    )
    limits = expand(np.asarray(max_steps))
    scores = np.full((batch, width), -np.inf, dtype=np.float64)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    scores = scores.reshape(-1)
    tokens = np.full(batch * width, bos, dtype=np.int64)
    history = np.zeros((batch * width, 0), dtype=np.int64)
    lengths = np.zeros(batch * width, dtype=np.int64)
    finished = np.zeros(batch * width, dtype=bool)
    attention = np.zeros((batch * width, 0, source_steps), dtype=np.float32)
    rows = np.arange(batch)[:, None]
    for step in range(int(limits.max())):
        out = run(
            "decoder_step",
            {"token": tokens, "state": state, "memory": memory, "keys": keys, "source_mask": mask},
        )
        log_probs = log_softmax(out["logits"].astype(np.float64))
        at_limit = ~finished & (step >= limits - 1)
        end_scores = log_probs[at_limit, eos]
        log_probs[at_limit] = -np.inf
        log_probs[at_limit, eos] = end_scores
        log_probs[finished] = -np.inf
        log_probs[finished, eos] = 0.0  # a finished hypothesis carries on unchanged
        candidates = (scores[:, None] + log_probs).reshape(batch, -1)
        top = np.argpartition(-candidates, width - 1, axis=1)[:, :width]
        top = np.take_along_axis(top, np.argsort(-candidates[rows, top], axis=1), axis=1)
        vocabulary = log_probs.shape[1]
        origin = (rows * width + top // vocabulary).reshape(-1)
        tokens = (top % vocabulary).reshape(-1)
        scores = candidates[rows, top].reshape(-1)
        was_finished = finished[origin]
        lengths = lengths[origin] + ~was_finished
        finished = was_finished | (tokens == eos)
        history = np.concatenate([history[origin], tokens[:, None]], axis=1)
        state = out["next_state"][origin]
        if keep_attention:
            attention = np.concatenate([attention[origin], out["attention"][origin][:, None]], axis=1)
        if finished.all():
            break
    ranked = (scores / np.maximum(lengths, 1) ** length_penalty).reshape(batch, width)
    best = np.arange(batch) * width + ranked.argmax(axis=1)
    outputs = [
        row[: int(np.argmax(row == eos)) if (row == eos).any() else len(row)].tolist()
        for row in history[best]
    ]
    kept = None
    if keep_attention:
        kept = [attention[b, : len(o) + 1] for b, o in zip(best, outputs, strict=True)]  # + the end step
    return Hypotheses(outputs, ranked.max(axis=1), kept)
