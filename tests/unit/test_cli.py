import socket
import subprocess
import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from flows.cli import app
from flows.failures import guard_commands

ROOT = Path(__file__).resolve().parents[2]

runner = CliRunner()


def test_bad_profile_fails_before_any_work_naming_the_field(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text(yaml.safe_dump({"tasks": {"sentiment": {"model": {"hidden_size": 0}}}}))
    result = runner.invoke(app, ["pipeline", "--profile", str(profile), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 2
    assert "tasks.sentiment.model.hidden_size" in result.output
    assert not (tmp_path / "w" / "cache").exists()  # no data was prepared


def test_unknown_cell_and_task_are_rejected(tmp_path):
    result = runner.invoke(app, ["train", "--cell", "transformer", "--work-dir", str(tmp_path)])
    assert result.exit_code == 2 and "cells.0" in result.output
    result = runner.invoke(app, ["train", "--task", "speech", "--work-dir", str(tmp_path)])
    assert result.exit_code == 2 and "registered tasks" in result.output


def test_predict_rejects_missing_input(tmp_path):
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(tmp_path),
            "--input",
            str(tmp_path / "nope.jsonl"),
            "--output",
            str(tmp_path / "o.jsonl"),
        ],
    )
    assert result.exit_code == 2 and "input file not found" in result.output


MALFORMED = {
    "bad indentation": "tasks:\n  sentiment:\n    model: {hidden_size: 8\n   train: [\n",
    "tab indentation": "tasks:\n\tsentiment: {}\n",
    "a list, not settings": "- sentiment\n- forecasting\n",
    "not UTF-8": b"tasks: {sentiment: {data: {limit: \xff\xfe}}}\n",
    "nested beyond reason": "x: " + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("content", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_profile_is_one_line_naming_the_file_and_exit_status_2(content, tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = runner.invoke(app, ["pipeline", "--profile", str(profile), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("configuration error: profile ") and str(profile) in line
    assert not (tmp_path / "w").exists()


def test_a_yaml_syntax_error_names_its_line(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text(MALFORMED["bad indentation"])
    result = runner.invoke(app, ["train", "--profile", str(profile), "--work-dir", str(tmp_path)])
    assert result.exit_code == 2 and "is not valid YAML at line 4" in result.output


def test_a_malformed_deployments_file_is_one_line_and_exit_status_2(tmp_path):
    deployments = tmp_path / "prefect.yaml"
    deployments.write_text("deployments:\n  - name: x\n    entrypoint: [\n")
    result = runner.invoke(
        app, ["schedule", "--file", str(deployments), "--check", "--work-dir", str(tmp_path)]
    )
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "deployments file" in result.output and "not valid YAML" in result.output


def test_a_work_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["train", "--profile", "smoke", "--work-dir", str(tmp_path / "file")])
    assert result.exit_code == 2 and "is a file" in result.output


def test_debug_anywhere_on_the_command_line_shows_the_traceback(tmp_path):
    profile = tmp_path / "bad.yaml"
    profile.write_text("- not settings\n")
    command = [
        sys.executable,
        "-m",
        "flows.cli",
        "train",
        "--profile",
        str(profile),
        "--work-dir",
        str(tmp_path),
    ]
    plain = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT)
    debug = subprocess.run([*command, "--debug"], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" not in plain.stderr and plain.stderr.count("\n") == 1
    assert "Traceback (most recent call last)" in debug.stderr and "ConfigError" in debug.stderr


def test_an_unexpected_failure_is_one_line_pointing_at_debug_with_exit_status_1(monkeypatch):
    lines = []

    @guard_commands(lambda label, message: lines.append(f"{label}: {message}"))
    def command() -> None:
        raise RuntimeError("disk on fire\nsecond line, at http://alice:hunter2@mlflow:5000")

    monkeypatch.delenv("SEQOPS_DEBUG", raising=False)
    with pytest.raises(typer.Exit) as ended:
        command()
    assert ended.value.exit_code == 1
    assert lines == [
        "unexpected error: RuntimeError: disk on fire second line, at http://***@mlflow:5000 "
        "(run again with --debug or SEQOPS_DEBUG=1 to see where)"
    ]


def test_a_work_dir_under_a_file_is_refused_before_anything_is_created(tmp_path):
    (tmp_path / "file").write_text("x")
    for command in (["train", "--profile", "smoke"], ["schedule", "--check"]):
        result = runner.invoke(app, [*command, "--work-dir", str(tmp_path / "file" / "sub")])
        assert result.exit_code == 2 and "is a file" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_models_with_the_tracking_server_down_is_one_line_and_exit_status_1(tmp_path, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("SEQOPS_MLFLOW_ATTEMPTS", "1")
    result = runner.invoke(app, ["models"])
    assert result.exit_code == 1 and result.output.startswith("tracking server unavailable: ")
    assert len(result.output.strip().splitlines()) == 1
