"""A data-parallel training rank other than 0: ``python -m models.ddp_worker SPEC`` (``models.distributed``).

It builds the same fit as rank 0 from the pickled spec, says it is ready (a file beside the spec,
which rank 0 waits for before it trains) and trains its share of each batch; rank 0 alone tracks,
checkpoints and exports.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

from models.distributed import rank, ready_file
from models.train import FitSpec, build_fit, quiet_lightning


def main(spec_path: Path) -> None:
    """Train one worker rank of the fit described in ``spec_path``."""
    quiet_lightning()
    spec: FitSpec = pickle.loads(spec_path.read_bytes())
    fit = build_fit(spec)
    ready_file(spec_path, rank()).touch()
    fit.run(spec.resume)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
