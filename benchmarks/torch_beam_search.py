"""Beam search written in PyTorch as a user would write it: batched, ``torch.topk`` over beam x vocabulary.

It is the translation benchmark's baseline, the code a team would run without seqops' graphs. It
keeps seqops' decoding rules so that both sides translate alike: the end marker is barred at the
first step, hypotheses rank by log-probability / length ** length_penalty, an input is done once no
live hypothesis can beat its best finished one or at its step limit, and done inputs leave the batch.
"""

from __future__ import annotations

import math

import torch

from models.families.seq2seq.network import Seq2Seq
from models.recurrent import time_mask


@torch.no_grad()
def torch_beam_search(
    network: Seq2Seq,
    input_ids: torch.Tensor,
    lengths: torch.Tensor,
    bos: int,
    eos: int,
    width: int,
    length_penalty: float,
    max_steps: torch.Tensor,
) -> tuple[list[list[int]], torch.Tensor]:
    """Translate a padded batch.

    Args:
        network: The trained network, in eval mode.
        input_ids: Source ids (batch, source steps).
        lengths: Source lengths (batch,).
        bos: Begin-of-sentence id.
        eos: End-of-sentence id.
        width: Live hypotheses per input (1 is greedy).
        length_penalty: Exponent of the length normalisation.
        max_steps: Per input, the most tokens to produce, the end marker included.

    Returns:
        The best hypothesis' tokens per input (no markers) and its score.
    """
    batch = len(lengths)
    memory, keys, state = network.encode(input_ids, lengths)
    mask = time_mask(lengths, input_ids.shape[1])
    shared = [t.repeat_interleave(width, 0) for t in (memory, keys, mask, max_steps, torch.arange(batch))]
    state = state.repeat_interleave(width, 0)
    scores = torch.full((batch, width), -math.inf, dtype=torch.float64)
    scores[:, 0] = 0.0
    scores = scores.view(-1)
    tokens = torch.full((batch * width,), bos)
    history = torch.zeros((batch * width, 0), dtype=torch.long)
    best_scores, best_tokens = (
        torch.full((batch,), -math.inf, dtype=torch.float64),
        [[] for _ in range(batch)],
    )
    step = 0
    while len(tokens):
        memory, keys, mask, limit, sentence = shared
        features, next_state, _ = network.decode(tokens[:, None], state, memory, keys, mask)
        log_probs = torch.log_softmax(network.output(features[:, 0]), dim=-1).double()
        eos_log_probs = log_probs[:, eos].clone()
        if step == 0:
            log_probs[:, eos] = eos_log_probs[:] = -math.inf
        live, vocabulary = len(tokens) // width, log_probs.shape[1]
        top_scores, top = (scores[:, None] + log_probs).view(live, -1).topk(2 * width, dim=1)
        origin = torch.arange(live)[:, None] * width + top // vocabulary
        words = top % vocabulary
        at_limit = limit[::width] <= step + 1
        normaliser = float(step + 1) ** length_penalty
        ended = ((words == eos) | at_limit[:, None]) & torch.isfinite(top_scores)
        finished = torch.where(ended, (scores[origin] + eos_log_probs[origin]) / normaliser, -math.inf)
        finished, rank = finished.max(dim=1)
        sentences = sentence[::width]
        for group in (finished > best_scores[sentences]).nonzero().flatten().tolist():
            best_scores[sentences[group]] = finished[group]
            best_tokens[sentences[group]] = history[origin[group, rank[group]]].tolist()
        order = torch.sort((words == eos).int(), dim=1, stable=True).indices[:, :width]
        chosen, next_scores = origin.gather(1, order), top_scores.gather(1, order)
        picked = words.gather(1, order)
        next_scores[picked == eos] = -math.inf
        done = at_limit | (next_scores.max(dim=1).values / normaliser <= best_scores[sentences])
        stay = (~done).repeat_interleave(width)
        chosen, picked, scores = chosen.view(-1)[stay], picked.view(-1)[stay], next_scores.view(-1)[stay]
        history = torch.cat([history[chosen], picked[:, None]], dim=1)
        state, tokens = next_state[chosen], picked
        shared = [t[stay] for t in shared]
        step += 1
    return best_tokens, best_scores
