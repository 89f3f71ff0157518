"""Shared fixtures: tiny synthetic SST-style data and a servable bundle built from it.

The other tasks' synthetic data and small models live in ``task_models`` and are shared from here.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from process_state import ProcessState

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for the Hub
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

import datasets  # noqa: E402
from sst_data import REQUIRE_SHARED_DATA, require_shared_data, write_sst  # noqa: E402, F401
from task_models import (  # noqa: E402, F401 (fixtures and helpers shared by the task modules)
    action_model,
    fit_bundle,
    forecasting_model,
    gesture_files,
    sine_csv,
    train_bundle,
    translation_corpus,
    translation_model,
)
from text_models import text_file, text_generation_model  # noqa: E402, F401 (the language-model fixtures)

datasets.disable_progress_bars()

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def synthetic_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data folder in the ``../shared/data`` layout holding a learnable SST-style task."""
    root = tmp_path_factory.mktemp("data")
    (root / "sst2").mkdir()
    for name, rows, seed in (("train", 600, 1), ("dev", 120, 2), ("test", 120, 3)):
        write_sst(root / "sst2" / f"stsa.binary.{name}", rows, seed)
    return root


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real data sets beside the checkout (always present in CI, where their absence fails)."""
    return require_shared_data(SHARED_DATA, os.environ)


@pytest.fixture(autouse=True)
def process_state_restored():
    """Whatever process-wide state a test changes is put back after it (see ``process_state``)."""
    before = ProcessState.capture()
    yield
    before.restore()


@pytest.fixture(scope="session")
def sentiment_prepared(synthetic_data_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """The synthetic SST-style task, prepared (splits and fitted codec)."""
    from tasks import get_task

    task = get_task("sentiment")
    cache = tmp_path_factory.mktemp("sentiment-cache")
    return task.prepare(task.config(data_dir=synthetic_data_dir, cache_dir=cache, min_frequency=1))


@pytest.fixture(scope="session")
def sentiment_bundle(sentiment_prepared, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A servable bundle: a small LSTM trained briefly on the synthetic task."""
    return train_bundle(
        "sentiment",
        sentiment_prepared,
        tmp_path_factory.mktemp("bundle"),
        {"embedding_dim": 16, "hidden_size": 16},
        {"max_epochs": 6, "batch_size": 32, "learning_rate": 0.01, "patience": 6},
    )


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    """One temporary Prefect server for the whole session, results kept in a temporary folder."""
    from prefect.settings import PREFECT_RESULTS_PERSIST_BY_DEFAULT, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PREFECT_LOCAL_STORAGE_PATH", str(tmp_path_factory.mktemp("prefect-results")))
        with (
            temporary_settings({PREFECT_RESULTS_PERSIST_BY_DEFAULT: False}),
            prefect_test_harness(server_startup_timeout=120),
        ):
            yield
