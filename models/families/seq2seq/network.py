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

import math

import torch
from torch import nn

from models.config import ModelConfig
from models.recurrent import CELLS, RecurrentEncoder, time_mask

MASKED = -1e9  # finite: a fully padded row gets uniform weights instead of NaN
BLOCK = 64  # vocabulary entries per block of the decoder step's two-pass top-k


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
        combined, attention = self.attend(outputs, memory, keys, source_mask)
        return combined, self._join(final), attention

    def attend(
        self, outputs: torch.Tensor, memory: torch.Tensor, keys: torch.Tensor, source_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Luong attention of decoder ``outputs`` (batch, steps, hidden) over one input's encoder outputs.

        Returns:
            What the output layer reads (batch, steps, hidden) and the attention (batch, steps, source).
        """
        scores = torch.bmm(outputs, keys.transpose(1, 2))
        scores = scores.masked_fill(~source_mask.unsqueeze(1), MASKED)
        attention = torch.softmax(scores, dim=-1)
        context = torch.bmm(attention, memory)
        return self.dropout(torch.tanh(self.combine(torch.cat([outputs, context], dim=-1)))), attention

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
    rather than beam x vocabulary. ``memory``, ``keys`` and ``source_mask`` have one row per input and
    an input's hypotheses are consecutive rows, so attention reads each input's memory once.
    """

    def __init__(self, network: Seq2Seq, eos: int, for_export: bool = False):
        """Wrap ``network`` (``for_export``: with what the graph derives from its weights precomputed).

        Exported, every target token's input projection is one table row, looked up instead of
        multiplied, and the output layer is padded to whole top-k blocks. As plain constants, not
        traced operations on the weights, they reach onnxruntime (and its int8 quantiser) as weights.
        """
        super().__init__()
        self.network, self.eos, self.for_export = network, eos, for_export
        if for_export:
            with torch.no_grad():
                self.register_buffer("table", self.projection(network.embed.weight))
                weight, bias = padded_output(network.output)
                self.register_buffer("output_weight", weight.T.contiguous())
                self.register_buffer("output_bias", bias)

    def projection(self, embedded: torch.Tensor) -> torch.Tensor:
        """The decoder cell's input projection ``W_ih e + b_ih`` of embeddings ``e``."""
        decoder = self.network.decoder
        return embedded @ decoder.weight_ih_l0.T + decoder.bias_ih_l0

    def cell(self, token: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One step of the decoder's one-layer cell: its output (batch, hidden) and next state.

        Written out gate by gate (PyTorch's gate order) rather than as the ONNX recurrent op, which
        costs twice its arithmetic at one step.
        """
        network, decoder = self.network, self.network.decoder
        projected = self.table[token] if self.for_export else self.projection(network.embed(token))
        if network.is_lstm:
            hidden, cell = state.chunk(2, dim=-1)
        else:
            hidden = state
        recurrent = hidden @ decoder.weight_hh_l0.T + decoder.bias_hh_l0
        if isinstance(decoder, nn.GRU):  # the new gate scales the recurrent part, bias included
            x_reset, x_update, x_new = projected.chunk(3, dim=-1)
            h_reset, h_update, h_new = recurrent.chunk(3, dim=-1)
            reset, update = torch.sigmoid(x_reset + h_reset), torch.sigmoid(x_update + h_update)
            new = torch.tanh(x_new + reset * h_new)
            hidden = new + update * (hidden - new)
            return hidden, hidden
        if network.is_lstm:
            in_gate, forget, candidate, out_gate = (projected + recurrent).chunk(4, dim=-1)
            cell = torch.sigmoid(forget) * cell + torch.sigmoid(in_gate) * torch.tanh(candidate)
            hidden = torch.sigmoid(out_gate) * torch.tanh(cell)
            return hidden, torch.cat([hidden, cell], dim=-1)
        hidden = torch.tanh(projected + recurrent)
        return hidden, hidden

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
        hidden, next_state = self.cell(token, state)
        grouped = hidden.reshape(memory.shape[0], -1, hidden.shape[-1])  # (inputs, beam, hidden)
        features, attention = self.network.attend(grouped, memory, keys, source_mask)
        # A 2-d MatMul and Add: onnxruntime fuses them into one Gemm, and int8 quantises the MatMul
        # (a Gemm it would leave fp32). The output layer is most of a step's work.
        if self.for_export:
            weight, bias = self.output_weight, self.output_bias
        else:
            weight, bias = padded_output(self.network.output)
            weight = weight.T
        log_probs = torch.log_softmax(features.reshape(hidden.shape[0], -1) @ weight + bias, dim=-1)
        count = torch.clamp(candidates, max=self.network.output.out_features)
        top_log_probs, top_tokens = top_candidates(log_probs, count)
        return top_log_probs, top_tokens, log_probs[:, self.eos], next_state, attention.flatten(0, 1)


def padded_output(output: nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """The output layer's weight and bias grown to whole blocks of ``BLOCK`` tokens that score -inf."""
    extra = -output.out_features % BLOCK
    weight = nn.functional.pad(output.weight, (0, 0, 0, extra))
    return weight, nn.functional.pad(output.bias, (0, extra), value=-math.inf)


def top_candidates(log_probs: torch.Tensor, count: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's ``count`` largest entries and their columns, best first, in two short passes.

    Columns come in blocks of ``BLOCK``. A row's ``count`` largest entries lie in its ``count`` blocks
    of largest maximum (any other block has that many maxima above its own), so one top-k ranks the
    block maxima and a second only those blocks' entries: in onnxruntime about a quarter cheaper than
    one top-k over a 4,000-token vocabulary.
    """
    rows = log_probs.shape[0]
    blocks = log_probs.reshape(rows, -1, BLOCK)
    _, best_blocks = torch.topk(blocks.amax(dim=-1), torch.clamp(count, max=blocks.shape[1]))
    flat = (torch.arange(rows).unsqueeze(1) * blocks.shape[1] + best_blocks).reshape(-1)
    top, where = torch.topk(blocks.reshape(-1, BLOCK)[flat].reshape(rows, -1), count)
    return top, torch.gather(best_blocks, 1, where // BLOCK) * BLOCK + where % BLOCK
