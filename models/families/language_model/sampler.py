"""Temperature, top-k and top-p (nucleus) sampling in torch operators, exported inside the step graphs.

The rules are those of ``tasks.text_generation.sampling.next_tokens``, which samples in numpy from the
logits of graphs exported before this one. The settings and the uniform draw come in as inputs
(float64, as numpy keeps them), the draw taken from the row's own seeded generator, so a row's text
still depends on its seed alone.
"""

from __future__ import annotations

import torch


def sample_tokens(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    top_k: torch.Tensor,
    top_p: torch.Tensor,
    draw: torch.Tensor,
) -> torch.Tensor:
    """One token per row from ``logits`` (batch, vocabulary).

    Args:
        logits: Next-token logits.
        temperature: Per row; 0 or less takes the most likely token.
        top_k: Per row; 0 keeps every token.
        top_p: Per row, in (0, 1]: the smallest set of likeliest tokens holding at least this mass.
        draw: Per row, a uniform number in [0, 1) that picks the token by inverse CDF.

    Returns:
        Token ids ``(batch,)``.
    """
    vocabulary = logits.shape[-1]
    greedy = temperature <= 0
    divisor = torch.where(greedy, torch.ones_like(temperature), temperature).to(logits.dtype)
    ranked, order = torch.sort(
        (logits - logits.max(dim=-1, keepdim=True).values) / divisor[:, None], -1, True
    )
    k = torch.where((top_k > 0) & (top_k < vocabulary), top_k, torch.full_like(top_k, vocabulary))
    kth = ranked.gather(1, (k - 1)[:, None])
    probabilities = torch.softmax(torch.where(ranked >= kth, ranked, torch.full_like(ranked, -torch.inf)), -1)
    before = probabilities.cumsum(-1) - probabilities  # the mass ranked above each token
    probabilities = torch.where(before < top_p[:, None], probabilities, torch.zeros_like(probabilities))
    probabilities = probabilities / probabilities.sum(-1, keepdim=True)
    # Rounding in the sum must never reach a token filtered out (nor index -1 on non-finite logits).
    kept = (probabilities > 0).sum(-1).clamp(min=1)
    picked = torch.minimum((probabilities.cumsum(-1) < draw[:, None]).sum(-1), kept - 1)
    return torch.where(greedy, logits.argmax(-1), order.gather(1, picked[:, None])[:, 0])
