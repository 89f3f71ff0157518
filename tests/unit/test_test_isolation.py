"""The suite's own guarantees: tests pass in any order because none leaves process-wide state behind,
and CI fails, rather than skips, when the real data beside the checkout is missing."""

import os
from pathlib import Path

import pytest
from process_state import LeftBehind, ProcessState
from sst_data import REQUIRE_SHARED_DATA, require_shared_data

ROOT = Path(__file__).resolve().parents[2]


def test_missing_real_data_fails_in_ci_and_skips_elsewhere(tmp_path):
    with pytest.raises(pytest.fail.Exception, match=f"real data not found at {tmp_path}"):
        require_shared_data(tmp_path, {REQUIRE_SHARED_DATA: "1"})
    with pytest.raises(pytest.skip.Exception, match="real data not found"):
        require_shared_data(tmp_path, {})
    (tmp_path / "sst2").mkdir()
    assert require_shared_data(tmp_path, {REQUIRE_SHARED_DATA: "1"}) == tmp_path


def test_the_ci_entry_point_requires_the_real_data_before_it_runs_the_tests():
    script = (ROOT / ".ci" / "run").read_text()
    assert f"export {REQUIRE_SHARED_DATA}=1" in script
    assert script.index(f"export {REQUIRE_SHARED_DATA}=1") < script.index("make test")


def test_environment_tracking_uri_open_runs_and_prefect_settings_are_restored(tmp_path):
    import mlflow
    from mlflow.tracking import MlflowClient
    from prefect.settings import PREFECT_API_URL, get_current_settings, temporary_settings

    uri_before, settings_before = mlflow.get_tracking_uri(), get_current_settings()
    before = ProcessState.capture()
    os.environ["SEQOPS_LEFT_BEHIND"] = "1"
    os.environ.pop("HF_HUB_OFFLINE")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(store)
    mlflow.set_experiment("left-behind")
    run = mlflow.start_run()
    temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}).__enter__()  # never exited
    os.chdir(tmp_path)

    with pytest.warns(LeftBehind, match=run.info.run_id):
        before.restore()

    assert "SEQOPS_LEFT_BEHIND" not in os.environ and os.environ["HF_HUB_OFFLINE"] == "1"
    assert mlflow.get_tracking_uri() == uri_before and mlflow.active_run() is None
    assert MlflowClient(store).get_run(run.info.run_id).info.status == "KILLED"
    assert get_current_settings() is settings_before and os.getcwd() != str(tmp_path)
