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

    Every step extends each live hypothesis by every token and keeps the ``2 * beam_width`` best;
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
    mask = np.arange(source_steps)[None, :] < encoder_feeds["lengths"][:, None]
    rows = {
        "memory": encoded["memory"],
        "keys": encoded["keys"],
        "state": encoded["state"],
        "source_mask": mask,
        "limit": np.asarray(max_steps),
        "sentence": np.arange(batch),
    }
    rows = {name: np.repeat(array, width, axis=0) for name, array in rows.items()}
    scores = np.tile(np.r_[0.0, np.full(width - 1, -np.inf)], batch)  # identical beams: expand one
    tokens = np.full(batch * width, bos, dtype=np.int64)
    history = np.zeros((batch * width, 0), dtype=np.int64)
    attention = np.zeros((batch * width, 0, source_steps), dtype=np.float32)
    best: list[tuple[float, list[int], np.ndarray | None]] = [(-np.inf, [], None)] * batch
    step = 0
    while len(tokens):
        feeds = {"token": tokens, **{k: rows[k] for k in ("state", "memory", "keys", "source_mask")}}
        out = run("decoder_step", feeds)
        log_probs = log_softmax(out["logits"].astype(np.float64))
        if step == 0:
            log_probs[:, eos] = -np.inf
        live = len(tokens) // width
        candidates = (scores[:, None] + log_probs).reshape(live, -1)
        keep = min(2 * width, candidates.shape[1])
        top = np.argpartition(-candidates, keep - 1, axis=1)[:, :keep]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(candidates, top, 1), axis=1), axis=1)
        top_scores = np.take_along_axis(candidates, top, 1)
        origin = np.arange(live)[:, None] * width + top // log_probs.shape[1]
        words = top % log_probs.shape[1]
        at_limit = rows["limit"][::width] <= step + 1
        normaliser = float(step + 1) ** length_penalty
        for group, sentence in enumerate(rows["sentence"][::width]):
            ended = (words[group] == eos) | at_limit[group]
            for rank in np.flatnonzero(ended & np.isfinite(top_scores[group])):
                row = origin[group, rank]
                # At the limit a hypothesis that did not choose the end marker is ended with it.
                score = (scores[row] + log_probs[row, eos]) / normaliser
                if score > best[sentence][0]:
                    weights = (
                        np.concatenate([attention[row], out["attention"][row][None]])
                        if keep_attention
                        else None
                    )
                    best[sentence] = (score, history[row].tolist(), weights)
        # The best ``width`` hypotheses that did not end stay live (fewer only if the vocabulary is tiny).
        order = np.argsort(words == eos, axis=1, kind="stable")[:, :width]
        chosen = np.take_along_axis(origin, order, 1)
        next_scores = np.take_along_axis(top_scores, order, 1)
        next_scores[np.take_along_axis(words, order, 1) == eos] = -np.inf
        best_finished = np.array([best[s][0] for s in rows["sentence"][::width]])
        done = at_limit | (next_scores.max(axis=1) / normaliser <= best_finished)
        stay = np.repeat(~done, width)
        chosen, picked = chosen.reshape(-1)[stay], np.take_along_axis(words, order, 1).reshape(-1)[stay]
        scores = next_scores.reshape(-1)[stay]
        if keep_attention:
            attention = np.concatenate([attention[chosen], out["attention"][chosen][:, None]], axis=1)
        history = np.concatenate([history[chosen], picked[:, None]], axis=1)
        rows = {name: array[chosen] for name, array in rows.items()}
        rows["state"] = out["next_state"][chosen]
        tokens = picked
        step += 1
    return Hypotheses(
        [b[1] for b in best],
        np.array([b[0] for b in best]),
        [b[2] for b in best] if keep_attention else None,
    )
