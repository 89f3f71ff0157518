"""A recurrent language model: embedding -> stacked RNN/LSTM/GRU with dropout -> logits over the vocabulary.

Reading a window of tokens, it predicts each next token. For serving it runs one token at a time
(``StartGraph``, then ``StepGraph``), its recurrent state packed into one ``(batch, state)`` tensor so
the graphs have the same inputs and outputs whatever the cell; each step also samples the next token.
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig
from models.families.language_model.sampler import sample_tokens
from models.recurrent import CELLS

State = torch.Tensor | tuple[torch.Tensor, torch.Tensor]


class LanguageModel(nn.Module):
    """Next-token logits for every position of a window.

    Args:
        config: Cell, embedding and hidden sizes, layers and dropout (``bidirectional`` and ``pooling``
            do not apply: a language model reads left to right, every step).
        vocab_size: Tokens in the vocabulary.
        tie_weights: Share the embedding matrix with the output layer (with a projection to the
            embedding size when the hidden size differs).
    """

    def __init__(self, config: ModelConfig, vocab_size: int, tie_weights: bool = False):
        super().__init__()
        self.cell, self.layers, self.hidden_size = config.cell, config.num_layers, config.hidden_size
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim)
        self.rnn = CELLS[config.cell](
            config.embedding_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            batch_first=True,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(config.dropout)
        tied_size = config.embedding_dim if tie_weights else config.hidden_size
        self.projection = (
            nn.Linear(config.hidden_size, tied_size) if tied_size != config.hidden_size else None
        )
        self.output = nn.Linear(tied_size, vocab_size)
        if tie_weights:
            self.output.weight = self.embedding.weight

    def forward(self, input_ids: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """Logits ``(batch, steps, vocabulary)`` for ``input_ids`` ``(batch, steps)``, and the last state."""
        outputs, state = self.rnn(self.dropout(self.embedding(input_ids)), state)
        outputs = self.dropout(outputs)
        if self.projection is not None:
            outputs = self.projection(outputs)
        return self.output(outputs), state

    def pack(self, state: State) -> torch.Tensor:
        """The recurrent state as ``(batch, state)``: every layer's hidden state (then every cell state)."""
        parts = state if isinstance(state, tuple) else (state,)
        return torch.cat([part.transpose(0, 1).reshape(part.shape[1], -1) for part in parts], dim=1)

    def unpack(self, packed: torch.Tensor) -> State:
        """The inverse of ``pack``."""
        parts = packed.reshape(packed.shape[0], -1, self.layers, self.hidden_size).permute(1, 2, 0, 3)
        parts = [part.contiguous() for part in parts]
        return (parts[0], parts[1]) if self.cell == "lstm" else parts[0]


class StartGraph(nn.Module):
    """The first step from the zero state.

    ``token`` (batch,) and the sampling inputs, one per row (``temperature``, ``top_k``, ``top_p``,
    ``draw``) -> ``logits``, ``next_state`` and ``next_token``, drawn from the logits by ``sample_tokens``.
    """

    def __init__(self, network: LanguageModel):
        super().__init__()
        self.network = network

    def forward(
        self,
        token: torch.Tensor,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
        top_p: torch.Tensor,
        draw: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, the packed state and a sampled token after one token."""
        logits, state = self.network(token.unsqueeze(1))
        logits = logits[:, 0]
        return logits, self.network.pack(state), sample_tokens(logits, temperature, top_k, top_p, draw)


class StepGraph(nn.Module):
    """One more step: ``token`` (batch,), ``state`` (batch, state), sampling settings -> as ``StartGraph``."""

    def __init__(self, network: LanguageModel):
        super().__init__()
        self.network = network

    def forward(
        self,
        token: torch.Tensor,
        state: torch.Tensor,
        temperature: torch.Tensor,
        top_k: torch.Tensor,
        top_p: torch.Tensor,
        draw: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits, the packed state and a sampled token after ``token``."""
        logits, next_state = self.network(token.unsqueeze(1), self.network.unpack(state))
        logits = logits[:, 0]
        return logits, self.network.pack(next_state), sample_tokens(logits, temperature, top_k, top_p, draw)
