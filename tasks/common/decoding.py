"""Greedy and beam-search decoding over an encoder graph and a one-step decoder graph, in numpy.

The search only sees a ``run(graph, feeds) -> outputs`` function, so the very same code decodes with
onnxruntime sessions (serving, evaluation) and with the PyTorch modules (export parity, benchmarks).

Graph contract:
    ``encoder``: ``input_ids`` (batch, source), ``lengths`` (batch,) -> ``memory`` (batch, source, m),
    ``keys`` (batch, source, k) and ``state`` (batch, s), the decoder's first state.
    ``decoder_step``: ``token`` (hypotheses,), ``state``, and ``memory``, ``keys``, ``source_mask`` with
    one row per input (each input's hypotheses are consecutive rows, as many per input), and the scalar
    ``candidates`` -> ``top_log_probs`` and ``top_tokens`` (hypotheses, candidates): each hypothesis'
    most likely next tokens, best first; ``eos_log_prob`` (hypotheses,), ``next_state`` and
    ``attention`` (hypotheses, source). The search then ranks beam x candidates scores per input, not
    beam x vocabulary, and the graph reads an input's memory once, not once per hypothesis. A step graph
    exported before this contract takes no ``candidates``, wants the shared rows once per hypothesis and
    returns ``logits`` (hypotheses, vocabulary) in place of the three; those are ranked here, with the
    same result. The first step, one hypothesis per input, tells the two apart.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.common.base import GraphRunner


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


def step_candidates(
    outputs: dict[str, np.ndarray], count: int, eos: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per hypothesis, its ``count`` most likely next tokens, their log-probabilities and the end marker's.

    Args:
        outputs: What the decoder step returned: its own candidates, or ``logits`` to rank here.
        count: Candidates asked for (fewer when the vocabulary is smaller).
        eos: End-of-sentence id.

    Returns:
        Log-probabilities ``(batch, count)``, their token ids, and the end marker's log-probability.
    """
    if "top_tokens" in outputs:
        return (
            outputs["top_log_probs"].astype(np.float64),
            outputs["top_tokens"],
            outputs["eos_log_prob"].astype(np.float64),
        )
    log_probs = log_softmax(outputs["logits"].astype(np.float64))
    count = min(count, log_probs.shape[1])
    tokens = np.argpartition(-log_probs, count - 1, axis=1)[:, :count]
    return np.take_along_axis(log_probs, tokens, 1), tokens, log_probs[:, eos]


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
    """Decode a batch, keeping ``beam_width`` live hypotheses per input (1 is greedy decoding).

    Every step extends each live hypothesis by its ``2 * beam_width + 1`` likeliest tokens (the decoder
    step ranks them) and keeps the ``2 * beam_width`` best extensions of the input;
    those that end the sentence join the input's finished pool (ranked by log-probability /
    length ** length_penalty), the best ``beam_width`` others stay live. An input is done once no live
    hypothesis outranks its best finished one at the current length, or at its step limit (where the
    end marker is forced). Finished inputs leave the batch, so the decoder only runs for live ones.

    Args:
        run: Runs a named graph on named arrays.
        encoder_feeds: ``input_ids`` and ``lengths`` of the batch.
        bos: Begin-of-sentence id fed at the first step.
        eos: End-of-sentence id (never the first output: no empty translations).
        beam_width: Live hypotheses kept per input.
        length_penalty: Exponent of the length normalisation (0 ranks by raw log-probability).
        max_steps: Per input, the most tokens to produce, the end marker included.
        keep_attention: Also return the best hypotheses' attention weights.

    Returns:
        The best hypothesis per input.
    """
    encoded = run("encoder", encoder_feeds)
    batch, width = len(encoder_feeds["lengths"]), beam_width
    source_steps = encoder_feeds["input_ids"].shape[1]
    # What an input's hypotheses share, one row per live input: re-indexed only when inputs leave.
    shared = {
        "memory": encoded["memory"],
        "keys": encoded["keys"],
        "source_mask": np.arange(source_steps)[None, :] < encoder_feeds["lengths"][:, None],
    }
    limits, sentences = np.asarray(max_steps), np.arange(batch)
    per_hypothesis: dict[str, np.ndarray] | None = None  # the shared rows repeated, for older graphs
    grouped = True  # the first step (one hypothesis per input) suits both contracts, and tells them apart
    # The live hypotheses, each input's consecutive: at first one per input, the empty one.
    tokens, state, scores = np.full(batch, bos, dtype=np.int64), encoded["state"], np.zeros(batch)
    history = np.zeros((batch, 0), dtype=np.int64)
    attention = np.zeros((batch, 0, source_steps), dtype=np.float32)
    best_scores, best_tokens = np.full(batch, -np.inf), [[] for _ in range(batch)]
    best_attention: list[np.ndarray | None] = [None] * batch
    # A hypothesis' 2 * width best tokens hold every candidate the input can keep, even with the end
    # marker barred at the first step.
    count = np.array(2 * width + 1)
    step = 0
    while len(tokens):
        live = len(sentences)
        feeds = {"token": tokens, "state": state, "candidates": count}
        if grouped or len(tokens) == live:
            out = run("decoder_step", feeds | shared)
        else:  # an older graph: the shared rows once per hypothesis
            if per_hypothesis is None or len(per_hypothesis["memory"]) != len(tokens):
                repeats = len(tokens) // live
                per_hypothesis = {name: np.repeat(array, repeats, 0) for name, array in shared.items()}
            out = run("decoder_step", feeds | per_hypothesis)
        grouped = "top_tokens" in out  # graphs that rank read the shared rows once per input
        log_probs, next_words, eos_log_probs = step_candidates(out, int(count), eos)
        if step == 0:
            log_probs[next_words == eos] = -np.inf
            eos_log_probs = np.full_like(eos_log_probs, -np.inf)
        rows, per_beam = len(tokens) // live, next_words.shape[1]
        candidates = (scores[:, None] + log_probs).reshape(live, -1)
        keep = min(2 * width, candidates.shape[1])
        top = np.argpartition(-candidates, keep - 1, axis=1)[:, :keep]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(candidates, top, 1), axis=1), axis=1)
        top_scores = np.take_along_axis(candidates, top, 1)
        origin = np.arange(live)[:, None] * rows + top // per_beam
        words = np.take_along_axis(next_words.reshape(live, -1), top, 1)
        at_limit = limits <= step + 1
        normaliser = float(step + 1) ** length_penalty
        # At the limit a hypothesis that did not choose the end marker is ended with it.
        ended = ((words == eos) | at_limit[:, None]) & np.isfinite(top_scores)
        finished = np.where(ended, (scores[origin] + eos_log_probs[origin]) / normaliser, -np.inf)
        rank = finished.argmax(axis=1)
        finished = finished[np.arange(live), rank]
        for group in np.flatnonzero(finished > best_scores[sentences]):
            row, sentence = origin[group, rank[group]], sentences[group]
            best_scores[sentence], best_tokens[sentence] = finished[group], history[row].tolist()
            if keep_attention:
                best_attention[sentence] = np.concatenate([attention[row], out["attention"][row][None]])
        # The best ``width`` hypotheses that did not end stay live (fewer only if the vocabulary is tiny).
        order = np.argsort(words == eos, axis=1, kind="stable")[:, :width]
        chosen = np.take_along_axis(origin, order, 1)
        next_scores = np.take_along_axis(top_scores, order, 1)
        next_scores[np.take_along_axis(words, order, 1) == eos] = -np.inf
        done = at_limit | (next_scores.max(axis=1) / normaliser <= best_scores[sentences])
        stay = np.repeat(~done, order.shape[1])
        chosen, picked = chosen.reshape(-1)[stay], np.take_along_axis(words, order, 1).reshape(-1)[stay]
        scores = next_scores.reshape(-1)[stay]
        if keep_attention:
            attention = np.concatenate([attention[chosen], out["attention"][chosen][:, None]], axis=1)
        history = np.concatenate([history[chosen], picked[:, None]], axis=1)
        state = out["next_state"][chosen]
        if done.any():
            shared = {name: array[~done] for name, array in shared.items()}
            limits, sentences, per_hypothesis = limits[~done], sentences[~done], None
        tokens = picked
        step += 1
    return Hypotheses(best_tokens, best_scores, best_attention if keep_attention else None)
