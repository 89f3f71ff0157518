"""The forecaster family's network: a recurrent encoder and a linear layer giving every horizon step."""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig
from models.recurrent import RecurrentEncoder


class Forecaster(nn.Module):
    """Recurrent encoder over real-valued steps plus a linear layer giving all ``horizon`` steps at once.

    The head predicts the change from the last observed target value (channel 0): an untrained
    model starts as the naive forecast and learning only has to add what history explains.
    """

    def __init__(self, config: ModelConfig, input_size: int, horizon: int):
        super().__init__()
        self.encoder = RecurrentEncoder(config, input_size=input_size)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(self.encoder.output_size, horizon)
        nn.init.zeros_(self.head.weight)  # start exactly at the naive forecast
        nn.init.zeros_(self.head.bias)

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Return the forecast ``(batch, horizon)`` in the scaled units of the target."""
        _, pooled = self.encoder(inputs, lengths)
        last_target = torch.gather(inputs[:, :, 0], 1, (lengths - 1).unsqueeze(1))
        return last_target + self.head(self.dropout(pooled))
