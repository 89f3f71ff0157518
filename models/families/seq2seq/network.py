"""Attention sequence-to-sequence network: recurrent encoder, recurrent decoder, Luong attention.

The decoder reads the previous target token; its output attends over the encoder outputs (Luong's
"general" score ``h_t^T W e_s``, padded source positions masked), and ``tanh(W_c [h_t; c_t])`` feeds
the output layer. Without input feeding, training runs the decoder cell over the whole target at once
(teacher forcing), and inference runs the very same weights one step at a time.

For ONNX the network splits into two graphs: ``EncoderGraph`` and ``DecoderStepGraph``. An LSTM's
hidden and cell states travel as one ``state`` tensor (concatenated), so serving code never needs to
know the cell.
"""

from __future__ import annotations

import torch
from torch import nn

from models.config import ModelConfig
from models.recurrent import CELLS, RecurrentEncoder, time_mask

MASKED = -1e9  # finite: a fully padded row gets uniform weights instead of NaN


class Seq2Seq(nn.Module):
    """Encoder-decoder with attention: ``forward`` trains (teacher forcing), ``encode``/``decode`` decode."""

    def __init__(self, config: ModelConfig, source_vocab_size: int, target_vocab_size: int):
        super().__init__()
        self.encoder = RecurrentEncoder(
            config.model_copy(update={"pooling": "last"}), vocab_size=source_vocab_size
        )
        hidden, memory_size = config.hidden_size, self.encoder.output_size
        self.is_lstm = config.cell == "lstm"
        self.state_size = 2 * hidden if self.is_lstm else hidden
        self.bridge = nn.Linear(memory_size, self.state_size)
        self.key = nn.Linear(memory_size, hidden, bias=False)
        self.embed = nn.Embedding(target_vocab_size, config.embedding_dim, padding_idx=0)
        self.decoder = CELLS[config.cell](config.embedding_dim, hidden, batch_first=True)
        self.combine = nn.Linear(hidden + memory_size, hidden)
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(hidden, target_vocab_size)

    def encode(
        self, input_ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encoder outputs ``memory``, their attention ``keys`` and the decoder's first ``state``."""
        memory, summary = self.encoder(input_ids, lengths)
        return memory, self.key(memory), torch.tanh(self.bridge(summary))

    def _split(self, state: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        if self.is_lstm:
            hidden, cell = state.chunk(2, dim=-1)
            return hidden.unsqueeze(0).contiguous(), cell.unsqueeze(0).contiguous()
        return state.unsqueeze(0)

    def _join(self, state: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return torch.cat([state[0][0], state[1][0]], dim=-1) if self.is_lstm else state[0]

    def decode(
        self,
        tokens: torch.Tensor,
        state: torch.Tensor,
        memory: torch.Tensor,
        keys: torch.Tensor,
        source_mask: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the decoder over ``tokens`` (batch, steps) from ``state``, up to the output layer.

        The output layer (``self.output``), the costliest part of training, is left to the caller:
        training runs it on the real target steps alone, never on padding.

        Args:
            tokens: The previous target tokens (batch, steps).
            state: The decoder's state before them.
            memory: Encoder outputs (batch, source steps, memory size).
            keys: Their attention keys.
            source_mask: Real source positions (batch, source steps).

        Returns:
            What the output layer reads (batch, steps, hidden); the final state; attention (batch,
            steps, source steps).
        """
        outputs, final = self.decoder(self.dropout(self.embed(tokens)), self._split(state))
        scores = torch.bmm(outputs, keys.transpose(1, 2))
        scores = scores.masked_fill(~source_mask.unsqueeze(1), MASKED)
        attention = torch.softmax(scores, dim=-1)
        context = torch.bmm(attention, memory)
        combined = self.dropout(torch.tanh(self.combine(torch.cat([outputs, context], dim=-1))))
        return combined, self._join(final), attention

    def forward(
        self,
        input_ids: torch.Tensor,
        lengths: torch.Tensor,
        target_inputs: torch.Tensor,
        scored: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Teacher-forced logits for the next token at every target step (or the ``scored`` ones)."""
        memory, keys, state = self.encode(input_ids, lengths)
        source_mask = time_mask(lengths, input_ids.shape[1])
        features = self.decode(target_inputs, state, memory, keys, source_mask)[0]
        return self.output(features if scored is None else features[scored])


class EncoderGraph(nn.Module):
    """The exported encoder: ``(input_ids, lengths) -> (memory, keys, state)``."""

    def __init__(self, network: Seq2Seq):
        super().__init__()
        self.network = network

    def forward(
        self, input_ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode a padded source batch."""
        return self.network.encode(input_ids, lengths)


class DecoderStepGraph(nn.Module):
    """The exported decoder step, with the search's ranking inside the graph.

    ``(token, state, memory, keys, source_mask, candidates) -> (top_log_probs, top_tokens,
    eos_log_prob, next_state, attention)``: per hypothesis, the ``candidates`` most likely next tokens
    and their log-probabilities (at most the vocabulary), and the end marker's log-probability, which a
    hypothesis cut at its step limit is scored with. The search then ranks beam x candidates scores
    rather than beam x vocabulary.
    """

    def __init__(self, network: Seq2Seq, eos: int):
        super().__init__()
        self.network = network
        self.eos = eos

    def forward(
        self,
        token: torch.Tensor,
        state: torch.Tensor,
        memory: torch.Tensor,
        keys: torch.Tensor,
        source_mask: torch.Tensor,
        candidates: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step for a batch of hypotheses."""
        features, next_state, attention = self.network.decode(
            token.unsqueeze(1), state, memory, keys, source_mask
        )
        # A 2-d MatMul and Add: onnxruntime fuses them into one Gemm, and int8 quantises the MatMul
        # (a Gemm it would leave fp32). The output layer is most of a step's work.
        output = self.network.output
        log_probs = torch.log_softmax(features[:, 0] @ output.weight.T + output.bias, dim=-1)
        top_log_probs, top_tokens = torch.topk(log_probs, torch.clamp(candidates, max=log_probs.shape[-1]))
        return top_log_probs, top_tokens, log_probs[:, self.eos], next_state, attention[:, 0]
