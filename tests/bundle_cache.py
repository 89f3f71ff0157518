"""Small trained test networks kept on disk between pytest sessions, when ``SEQOPS_TEST_CACHE`` is set.

Only ``make mutation`` sets it: each mutant runs its tests in a fresh session, and training the small
networks again there would cost more than the tests themselves. Only training is cached; export, the
parity check and the bundle (code under mutation) run every session. A network is keyed by everything
that shapes it (task, data fingerprint, network and training settings, cell), so a changed setting
trains anew; ``make test`` never reads the cache.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from tasks.common.base import fingerprint

CACHE_VARIABLE = "SEQOPS_TEST_CACHE"


def cached_network(
    key_parts: Callable[[], tuple[Any, ...]], fit: Callable[[], torch.nn.Module]
) -> torch.nn.Module:
    """``fit()``'s network, from the cache when ``SEQOPS_TEST_CACHE`` is set and holds it.

    Args:
        key_parts: Gives everything that shapes the network (JSON-able); only called with a cache.
        fit: Trains the network.

    Returns:
        The trained network.
    """
    cache = os.environ.get(CACHE_VARIABLE)
    if not cache:
        return fit()
    entry = Path(cache) / f"{fingerprint(*key_parts())}.pt"
    if entry.is_file():
        try:
            return torch.load(entry, weights_only=False)
        # The entry pickles the network's class by its module path: a class that moved (or a cache
        # of an older checkout) cannot be loaded, so the network is trained again and the entry replaced.
        except (AttributeError, ImportError, pickle.UnpicklingError, EOFError, RuntimeError):
            pass
    network = fit()
    Path(cache).mkdir(parents=True, exist_ok=True)
    handle, staging = tempfile.mkstemp(dir=cache, suffix=".partial")
    os.close(handle)
    torch.save(network, staging)
    os.replace(staging, entry)  # two sessions may train it at once: either copy is the same network
    return network
