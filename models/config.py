"""Typed settings for the network and its training; bad values fail naming the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Cell = Literal["rnn", "lstm", "gru"]
Precision = Literal["32", "bf16-mixed", "16-mixed"]


class ModelConfig(BaseModel):
    """Shape of the recurrent network.

    Attributes:
        cell: ``rnn`` (Elman, tanh), ``lstm`` or ``gru``.
        embedding_dim: Size of token embeddings (token input) or of the input projection (real-valued input).
        hidden_size: Recurrent state size per direction.
        num_layers: Stacked recurrent layers.
        bidirectional: Also read each sequence backwards (within its own length).
        dropout: Dropout on embeddings, between layers and before the head.
        pooling: How per-step outputs become one vector: ``last`` valid step, masked ``mean`` or ``max``.
        options: Settings only the task's network family knows (its ``Family.options_model``).
    """

    model_config = ConfigDict(extra="forbid")

    cell: Cell = "lstm"
    embedding_dim: int = Field(128, ge=1)
    hidden_size: int = Field(128, ge=1)
    num_layers: int = Field(1, ge=1, le=8)
    bidirectional: bool = False
    dropout: float = Field(0.3, ge=0.0, lt=1.0)
    pooling: Literal["last", "mean", "max"] = "last"
    options: dict[str, Any] = {}


class TrainConfig(BaseModel):
    """Optimisation settings.

    Attributes:
        optimizer: ``adam``, ``rmsprop`` or ``sgd`` (with momentum 0.9).
        learning_rate: Initial learning rate.
        weight_decay: L2 penalty.
        batch_size: Sequences per step.
        max_epochs: Upper bound on epochs; early stopping usually ends sooner.
        patience: Epochs without validation improvement before stopping.
        gradient_clip_norm: Clip the global gradient norm to this value (exploding gradients); 0 disables.
        scheduler: ``cosine`` over ``max_epochs``, ``plateau`` (halve on a stalled metric) or ``none``.
        seed: Seed for weights and data order.
        num_threads: Torch intra-op threads; 0 keeps torch's default.
        limit_train_batches: Cap on training batches per epoch (smoke runs); ``None`` uses them all.
        loss: Regression loss, ``mse`` or ``mae`` (classification always uses cross-entropy).
        label_smoothing: Share of each target token's probability spread over the vocabulary (token targets).
        accelerator: ``cpu``, ``gpu``, or ``auto`` (a GPU when one is visible, else the CPU).
        devices: Processes training together, one per device (data parallel: each takes its share of
            every batch of ``batch_size`` and their gradients are averaged).
        strategy: ``ddp`` (distributed data parallel) or ``auto`` (``ddp`` when ``devices`` > 1).
        precision: ``32``, or mixed precision: ``bf16-mixed`` (CPU or recent GPUs), ``16-mixed`` (GPU).
    """

    model_config = ConfigDict(extra="forbid")

    optimizer: Literal["adam", "rmsprop", "sgd"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(64, ge=1)
    max_epochs: int = Field(10, ge=1)
    patience: int = Field(3, ge=1)
    gradient_clip_norm: float = Field(1.0, ge=0)
    scheduler: Literal["cosine", "plateau", "none"] = "cosine"
    seed: int = 42
    num_threads: int = Field(0, ge=0)
    limit_train_batches: int | None = Field(None, ge=1)
    loss: Literal["mse", "mae"] = "mse"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    accelerator: Literal["auto", "cpu", "gpu"] = "auto"
    devices: int = Field(1, ge=1, le=64)
    strategy: Literal["auto", "ddp"] = "auto"
    precision: Precision = "32"

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        # YAML reads ``precision: 32`` as a number.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _half_precision_needs_a_gpu(self) -> TrainConfig:
        if self.precision == "16-mixed" and self.accelerator == "cpu":
            raise ValueError("precision '16-mixed' needs accelerator 'gpu' (on a CPU use 'bf16-mixed')")
        return self

    @property
    def distributed(self) -> bool:
        """Whether training runs as several data-parallel processes."""
        return self.devices > 1 or self.strategy == "ddp"
