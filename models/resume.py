"""Where a killed fit resumes: the ``last.ckpt`` Lightning writes after every epoch, checked before use."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import pytorch_lightning as pl
import torch

LAST_CHECKPOINT = "last.ckpt"
log = logging.getLogger(__name__)


def resume_point(checkpoint_dir: Path, module: pl.LightningModule) -> tuple[Path, int] | None:
    """The ``last.ckpt`` in a folder to resume ``module``'s training from and its epoch, if usable.

    Loaded here as Lightning will load it (``weights_only=True``), so that a checkpoint truncated by a
    kill, written for another network shape or in another folder, or holding objects that
    ``weights_only`` refuses, is found before ``fit``. Such a file is logged and removed with the other
    checkpoints, so that the fresh start does not write ``best-v1.ckpt`` beside a stale ``best.ckpt``.

    Returns:
        The checkpoint and the epoch training resumes at (the number of epochs it finished), or
        ``None`` to start from scratch.
    """
    last = checkpoint_dir / LAST_CHECKPOINT
    if not last.is_file():
        return None
    try:
        state = torch.load(last, weights_only=True, map_location="cpu")
        if {k: v.shape for k, v in state["state_dict"].items()} != {
            k: v.shape for k, v in module.state_dict().items()
        }:
            raise ValueError("its weights do not fit this network")
        if not {"loops", "optimizer_states", "callbacks"} <= state.keys():
            raise ValueError("it holds weights but no training state")
        # ModelCheckpoint restores where its best checkpoint is only if it was written in this folder.
        for saver in (c for c in state["callbacks"].values() if "best_model_path" in c):
            if saver["dirpath"] != str(checkpoint_dir.resolve()):
                raise ValueError(f"it was written in {saver['dirpath']}")
            if not Path(saver["best_model_path"]).is_file():
                raise ValueError(f"its checkpoint {saver['best_model_path']} is gone")
        epoch = int(state["epoch"]) + 1
    except (
        OSError,
        EOFError,
        RuntimeError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        pickle.UnpicklingError,
    ) as error:
        log.warning("cannot resume from %s (%r): training from scratch", last, error)
        for stale in checkpoint_dir.glob("*.ckpt"):
            stale.unlink()
        return None
    return last, epoch
