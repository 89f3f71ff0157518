"""How far back a loss gradient reaches: ``||dL/dh_t||`` per time step of a recurrent layer's output.

A fused recurrent kernel hides its steps, so the profiled layer is run one step at a time; the gradient
measured is the one carried back through the recurrence from each sequence's last input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn


def top_recurrent_layer(module: nn.Module) -> tuple[str, nn.RNNBase] | None:
    """The recurrent module whose outputs are the hidden states ``h_t`` to profile.

    The last unidirectional ``nn.RNNBase`` of the encoder (a module path holding ``encoder``; any one if
    none does), forward direction first (a path without ``backward``).

    Args:
        module: The LightningModule (or any module).

    Returns:
        Its module path and the module, or ``None`` if there is no recurrent module.
    """
    found = [
        (name, m) for name, m in module.named_modules() if isinstance(m, nn.RNNBase) and not m.bidirectional
    ]
    encoder = [item for item in found if "encoder" in item[0].split(".")] or found
    forward = [item for item in encoder if "backward" not in item[0]] or encoder
    return forward[-1] if forward else None


def unrolled(recurrent: nn.RNNBase, inputs: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any, list]:
    """Run a recurrent module one step at a time, feeding each step's output on as the top hidden state.

    The fused kernel hides ``h_t`` inside itself; here the output ``h_t`` of step ``t`` is the very
    tensor step ``t + 1`` reads, so ``dL/dh_t`` takes in every later step, not only step ``t``'s own use.

    Args:
        recurrent: A unidirectional ``nn.RNN``, ``nn.LSTM`` or ``nn.GRU``.
        inputs: Its input sequence (batched).
        state: Its initial state, or ``None`` for zeros.

    Returns:
        The same output and final state as ``recurrent(inputs, state)``, and the ``h_t`` per step.
    """
    time = 1 if recurrent.batch_first else 0
    hidden: list[torch.Tensor] = []
    for step in range(inputs.shape[time]):
        output, state = recurrent.forward(inputs.narrow(time, step, 1), state)  # forward: no hooks
        hidden.append(output.select(time, 0))
        top = hidden[-1].unsqueeze(0)
        if isinstance(state, tuple):
            state = (torch.cat([state[0][:-1], top]), state[1])
        else:
            state = torch.cat([state[:-1], top])
    return torch.stack(hidden, time), state, hidden


def through_time(loss: torch.Tensor, steps: list[torch.Tensor], lengths: torch.Tensor) -> list[torch.Tensor]:
    """The loss gradient at each sequence's last input, carried back to every earlier ``h_t``.

    Only the path through the recurrence counts: a head that reads every step (mean pooling, attention)
    also sends each ``h_t`` a gradient of its own, which would hide how far back the recurrence reaches.

    Args:
        loss: The loss on the batch.
        steps: ``h_t`` per step, each ``(batch, hidden)``, as the next step read it.
        lengths: Valid steps per sequence.

    Returns:
        ``dL/dh_t`` through the recurrence per step (``dL/dh_T`` itself at each sequence's last step).
    """
    direct = torch.autograd.grad(loss, steps, retain_graph=True, allow_unused=True)
    direct = [torch.zeros_like(h) if g is None else g for h, g in zip(steps, direct, strict=True)]
    rows = torch.arange(len(lengths), device=lengths.device)
    last = torch.stack(steps, dim=1)[rows, lengths - 1]  # (batch, hidden): h_T of each sequence
    arriving = torch.stack(direct, dim=1)[rows, lengths - 1].detach()
    carried = torch.autograd.grad((arriving * last).sum(), steps, allow_unused=True)
    return [torch.zeros_like(h) if g is None else g for h, g in zip(steps, carried, strict=True)]


def hidden_gradient_profile(module: pl.LightningModule, batch: Any, recurrent: nn.RNNBase) -> list[float]:
    """``||dL/dh_t||`` per time step on a batch, averaged over the sequences valid at that step.

    ``h_t`` is ``recurrent``'s output at step ``t`` (``unrolled``); its gradient is the one carried back
    through the recurrence from each sequence's last input (``through_time``). Sequences are aligned at
    their ends (the last entry is every sequence's last input); padding (the batch's ``lengths``) is left
    out.

    Args:
        module: A LightningModule with ``loss_on(batch)``; its train/eval mode is restored afterwards.
        batch: A batch as its loaders yield it, on the module's device.
        recurrent: A unidirectional recurrent module that ``loss_on`` runs once on batched input.

    Returns:
        One mean norm per step, from the first to the last input.
    """
    steps: list[torch.Tensor] = []

    def unroll(_module: nn.Module, inputs: tuple, _output: Any) -> tuple[torch.Tensor, Any] | None:
        if steps:  # run twice in one loss: the first run is profiled
            return None
        output, state, hidden = unrolled(recurrent, inputs[0], inputs[1] if len(inputs) > 1 else None)
        steps.extend(hidden)
        return output, state

    handle = recurrent.register_forward_hook(unroll)
    training = module.training
    module.eval()
    try:
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):  # cuDNN: no backward in eval
            loss = module.loss_on(batch)
            if not steps:
                raise RuntimeError("loss_on did not run the recurrent layer")
            lengths = batch.get("lengths") if isinstance(batch, Mapping) else None
            if lengths is None:
                lengths = torch.full((steps[0].shape[0],), len(steps), device=steps[0].device)
            lengths = lengths.to(steps[0].device).clamp(1, len(steps))
            gradients = through_time(loss, steps, lengths)
    finally:
        handle.remove()
        module.train(training)
    norms = torch.stack(gradients, dim=1).detach().float().norm(dim=-1)  # (batch, time)
    longest = int(lengths.max())
    # aligned[b, j] = norms[b, j - (longest - L_b)]: each sequence's last input at the last step.
    source = torch.arange(longest, device=norms.device).unsqueeze(0) - (longest - lengths).unsqueeze(1)
    valid = source >= 0
    aligned = torch.gather(norms, 1, source.clamp(min=0)) * valid
    return (aligned.sum(0) / valid.sum(0).clamp(min=1)).tolist()
