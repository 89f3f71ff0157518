"""A password in a URI never reaches a terminal, a log record, a tag or Prefect's store."""

import logging
import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flows.failures import install_log_hygiene
from serving.redaction import mask_credentials
from tasks import DataSourceError

ROOT = Path(__file__).resolve().parents[2]
SECRET = "hunter2-Zq7xK"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("http://alice:s3cret@mlflow:5000/api", "http://***@mlflow:5000/api"),
        ("at https://alice@host/x and https://bob:pw@other", "at https://***@host/x and https://***@other"),
        ("postgresql+psycopg2://u:p@ss@db:5432/mlflow", "postgresql+psycopg2://***@db:5432/mlflow"),
        ("'http://u:p@h'", "'http://***@h'"),
        ("postgresql://u:pa/ss@db/x", "postgresql://***@db/x"),
        ("mail me at a@b.com or see http://h/x", None),
        ("s3://bucket/key@v2", "s3://***@v2"),  # a path holding an @ is masked too: better too much
    ],
)
def test_credentials_in_uris_are_masked_and_nothing_else_changes(text, masked):
    assert mask_credentials(text) == (masked or text)


def test_log_records_are_masked_and_expected_failures_carry_no_traceback(caplog):
    install_log_hygiene()
    logger = logging.getLogger("seqops.test")
    with caplog.at_level(logging.INFO, logger="seqops.test"):
        logger.info("calling %s", f"http://me:{SECRET}@mlflow:5000")
        try:
            raise ConnectionError(f"no answer from http://me:{SECRET}@mlflow:5000")
        except ConnectionError:
            logger.exception("unexpected")
        try:
            raise DataSourceError("no data")
        except DataSourceError:
            logger.exception("expected")
    text = caplog.text
    assert SECRET not in text and "calling http://***@mlflow:5000" in text
    unexpected, expected = caplog.records[1], caplog.records[2]
    assert "Traceback" in unexpected.exc_text and "http://***@mlflow:5000" in unexpected.exc_text
    assert expected.exc_info is None and not expected.exc_text


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_password_in_the_tracking_uri_never_leaks_from_a_failing_pipeline(synthetic_data_dir, tmp_path):
    uri = f"http://seqops:{SECRET}@127.0.0.1:{closed_port()}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PREFECT_"))},
        "MLFLOW_TRACKING_URI": uri,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "SEQOPS_MLFLOW_ATTEMPTS": "2",
        "SEQOPS_MLFLOW_BACKOFF": "0",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    command = [sys.executable, "-m", "flows.cli", "pipeline", "--task", "sentiment", "--profile", "smoke"]
    command += ["--data-dir", str(synthetic_data_dir), "--work-dir", str(tmp_path / "work")]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    assert "tracking server unavailable" in done.stderr and "http://***@127.0.0.1" in done.stderr
    assert SECRET not in done.stdout + done.stderr and "Traceback" not in done.stdout + done.stderr
    for path in (tmp_path / "work").rglob("*"):  # caches, checkpoints, Prefect's database and its WAL
        assert not path.is_file() or SECRET.encode() not in path.read_bytes(), path
    with sqlite3.connect(tmp_path / "work" / "prefect" / "prefect.db") as prefect:
        logs = [message for (message,) in prefect.execute("SELECT message FROM log")]
        states = [message or "" for (message,) in prefect.execute("SELECT message FROM flow_run_state")]
    assert any("http://***@127.0.0.1" in message for message in logs)  # the failure was logged, masked
    assert any("TrackingUnavailable" in message for message in states)
    assert not any(SECRET in message for message in logs + states)


def test_mlflow_prints_no_run_links_when_the_tracking_uri_holds_a_password(monkeypatch):
    from serving.report import use_tracking_uri

    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://me:{SECRET}@127.0.0.1:{closed_port()}")
    use_tracking_uri()
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
