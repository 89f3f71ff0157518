"""The recurrent encoder every network family builds on, and its masking helpers.

Padding is handled with lengths and masks rather than ``pack_padded_sequence``, because packed
sequences do not export to ONNX. The backward direction of a bidirectional layer reads each
sequence reversed *within its own length*, so padding never leaks into a real state.
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}  # nn.RNN is the Elman cell, tanh by default


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence's first ``length`` steps, leaving padded steps in place.

    Args:
        x: Batch of sequences, shape ``(batch, time, features)``.
        lengths: Valid steps per sequence, shape ``(batch,)``.

    Returns:
        A tensor of the same shape; applying it twice gives back ``x``.
    """
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)
    last = (lengths - 1).unsqueeze(1)
    index = torch.where(steps <= last, last - steps, steps)
    return torch.gather(x, 1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def time_mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """Boolean ``(batch, time)`` mask, true on valid steps."""
    return torch.arange(steps, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class RecurrentEncoder(nn.Module):
    """Stacked RNN/LSTM/GRU over token ids or real-valued vectors.

    Token input goes through an embedding (id 0 is padding); real-valued input through a linear
    projection. Each layer is unidirectional, or a forward plus a length-aware backward pass.
    """

    def __init__(self, config: ModelConfig, vocab_size: int | None = None, input_size: int | None = None):
        super().__init__()
        if (vocab_size is None) == (input_size is None):
            raise ValueError("give exactly one of vocab_size (token input) or input_size (real-valued input)")
        if vocab_size is not None:
            self.embed: nn.Module = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=0)
        else:
            self.embed = nn.Linear(input_size, config.embedding_dim)
        cell = CELLS[config.cell]
        directions = 2 if config.bidirectional else 1
        self.forward_layers = nn.ModuleList()
        self.backward_layers = nn.ModuleList()
        layer_input = config.embedding_dim
        for _ in range(config.num_layers):
            self.forward_layers.append(cell(layer_input, config.hidden_size, batch_first=True))
            if config.bidirectional:
                self.backward_layers.append(cell(layer_input, config.hidden_size, batch_first=True))
            layer_input = config.hidden_size * directions
        self.dropout = nn.Dropout(config.dropout)
        self.pooling = config.pooling
        self.output_size = layer_input

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode a padded batch.

        Args:
            inputs: ``(batch, time)`` token ids or ``(batch, time, features)`` values.
            lengths: Valid steps per sequence, each at least 1.

        Returns:
            Per-step outputs ``(batch, time, output_size)`` (zero on padded steps) and the pooled
            sequence vector ``(batch, output_size)``.
        """
        x = self.dropout(self.embed(inputs))
        mask = time_mask(lengths, x.shape[1]).unsqueeze(-1)
        backward_final = None
        for index, forward_layer in enumerate(self.forward_layers):
            outputs, _ = forward_layer(x)
            if self.backward_layers:
                reversed_outputs, _ = self.backward_layers[index](reverse_within_length(x, lengths))
                backward_final = reversed_outputs
                outputs = torch.cat([outputs, reverse_within_length(reversed_outputs, lengths)], dim=-1)
            x = outputs * mask
            if index < len(self.forward_layers) - 1:
                x = self.dropout(x)
        return x, self.pool(x, lengths, mask, backward_final)

    def pool(
        self,
        outputs: torch.Tensor,
        lengths: torch.Tensor,
        mask: torch.Tensor,
        backward_final: torch.Tensor | None,
    ) -> torch.Tensor:
        """Reduce per-step outputs to one vector per sequence."""
        if self.pooling == "mean":
            return outputs.sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
        if self.pooling == "max":
            return outputs.masked_fill(~mask, torch.finfo(outputs.dtype).min).amax(dim=1)
        last = (lengths - 1).view(-1, 1, 1).expand(-1, 1, outputs.shape[2])
        final = torch.gather(outputs, 1, last).squeeze(1)
        if backward_final is None:
            return final
        # The backward pass ends at step 0: its final state is its own last valid output.
        hidden = backward_final.shape[2]
        backward = torch.gather(backward_final, 1, last[:, :, :hidden]).squeeze(1)
        return torch.cat([final[:, :hidden], backward], dim=-1)
