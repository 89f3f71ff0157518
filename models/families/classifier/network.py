"""The classifier family's network: a recurrent encoder and a linear layer over its pooled vector."""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig
from models.recurrent import RecurrentEncoder


class SequenceClassifier(nn.Module):
    """Recurrent encoder plus a linear layer over the pooled vector: ``logits = W h + b``."""

    def __init__(
        self,
        config: ModelConfig,
        num_classes: int,
        vocab_size: int | None = None,
        input_size: int | None = None,
    ):
        super().__init__()
        self.encoder = RecurrentEncoder(config, vocab_size=vocab_size, input_size=input_size)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.encoder.output_size, num_classes)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Return class logits ``(batch, num_classes)``."""
        _, pooled = self.encoder(inputs, lengths)
        return self.head(self.dropout(pooled))
