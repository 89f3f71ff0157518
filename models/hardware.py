"""Which device trains, checked against what this machine has before any work starts."""

from __future__ import annotations

import os

import torch

from models.config import TrainConfig


class HardwareError(ValueError):
    """A training setting asks for hardware this machine lacks; the message starts with the field."""


def accelerator(config: TrainConfig) -> str:
    """The accelerator a fit runs on: ``gpu`` or ``cpu`` (``auto`` picks a GPU when one is visible)."""
    if config.accelerator == "auto":
        return "gpu" if torch.cuda.is_available() else "cpu"
    return config.accelerator


def threads_per_process(config: TrainConfig) -> int:
    """Torch threads of each training process: the setting, else the cores shared among the processes."""
    if config.num_threads:
        return config.num_threads
    return max(1, (os.cpu_count() or 1) // config.devices)


def check_hardware(config: TrainConfig) -> None:
    """Refuse settings this machine cannot run: a GPU where none is visible, more GPUs than it has.

    Raises:
        HardwareError: Its message starts with the field (``accelerator: ...``).
    """
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    chosen = accelerator(config)
    if config.accelerator == "gpu" and not gpus:
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise HardwareError(
            f"accelerator: 'gpu', but PyTorch sees no GPU (torch {torch.__version__}, {build}); "
            "use 'cpu' or 'auto'"
        )
    if chosen == "gpu" and config.devices > gpus:
        raise HardwareError(f"devices: {config.devices} GPUs asked for, this machine has {gpus}")
    if config.precision == "16-mixed" and chosen == "cpu":
        raise HardwareError(
            "precision: '16-mixed' needs a GPU and none is visible; on a CPU use 'bf16-mixed'"
        )
    if config.precision == "bf16-mixed" and chosen == "gpu" and not torch.cuda.is_bf16_supported():
        raise HardwareError("precision: 'bf16-mixed' is not supported by this GPU; use '16-mixed'")
