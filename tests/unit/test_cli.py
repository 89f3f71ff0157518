import yaml
from typer.testing import CliRunner

from flows.cli import app

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
