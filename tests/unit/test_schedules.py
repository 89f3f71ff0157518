"""Deployments: infra/prefect.yaml is valid for Prefect and `seqops schedule`; errors name the field."""

import pytest
import yaml

from flows.config import ConfigError
from flows.schedules import DEPLOYMENTS_FILE, load_deployments, runner_deployments


def write(tmp_path, deployments: list[dict]):
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump({"name": "seqops", "deployments": deployments}))
    return path


def test_every_task_has_a_scheduled_retraining_and_batch_runs_on_demand():
    specs = {spec.name: spec for spec in load_deployments()}
    assert {
        f"retrain-{t}"
        for t in ("sentiment", "forecasting", "action-recognition", "translation", "text-generation")
    } < set(specs)
    assert specs["retrain-sentiment"].parameters == {"tasks": ["sentiment"], "profile": "default"}
    assert specs["retrain-sentiment"].schedules[0].cron == "0 2 * * *"
    assert specs["batch-predict"].schedules == []
    raw = yaml.safe_load(DEPLOYMENTS_FILE.read_text())
    assert all(d["work_pool"]["name"] == "seqops-process" for d in raw["deployments"])


def test_served_deployments_carry_schedules_and_typed_parameter_forms():
    specs = load_deployments()
    served = {d.name: d for d in runner_deployments(specs)}
    retrain = served["retrain-sentiment"]
    assert retrain.schedules[0].schedule.cron == "0 2 * * *" and retrain.concurrency_limit == 1
    # The schema the Prefect UI draws its run form from.
    forms = {spec.name: spec.flow().parameters.model_dump() for spec in specs}
    batch = forms["batch-predict"]
    assert set(batch["required"]) == {"input_path", "output_path", "model"}  # deployments give the model
    assert batch["properties"]["chunk_size"]["minimum"] == 1
    assert batch["properties"]["quantize"]["anyOf"][0]["const"] == "int8"
    cells = forms["retrain-sentiment"]["properties"]["cells"]
    assert "rnn" in str(cells) and "gru" in str(cells)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"schedules": [{"cron": "61 * * * *"}]}, r"deployments\[0\]: schedules.0.cron"),
        ({"parameters": {"task": ["sentiment"]}}, r"takes no \['task'\]"),
        ({"entrypoint": "flows/pipeline.py"}, r"deployments\[0\]: entrypoint"),
        ({"schedules": [{"cron": "0 2 * * *", "timezone": "UTC", "every": 2}]}, r"schedules.0.every"),
        ({"schedules": [{"cron": "0 2 * * *", "timezone": "Mars/Base"}]}, r"schedules.0.timezone"),
    ],
)
def test_a_bad_deployment_fails_naming_its_field(tmp_path, entry, message):
    spec = {"name": "retrain", "entrypoint": "flows/pipeline.py:pipeline", **entry}
    with pytest.raises(ConfigError, match=message):
        load_deployments(write(tmp_path, [spec]))


def test_a_scheduled_run_must_have_every_required_parameter(tmp_path):
    spec = {
        "name": "nightly-batch",
        "entrypoint": "flows/batch.py:batch_predict",
        "parameters": {"input_path": "rows.jsonl"},
        "schedules": [{"cron": "0 6 * * *"}],
    }
    with pytest.raises(ConfigError, match="output_path"):
        load_deployments(write(tmp_path, [spec]))


def test_unknown_deployment_names_are_refused():
    with pytest.raises(ConfigError, match=r"no deployment named \['retrain-weather'\]"):
        load_deployments(names=["retrain-weather"])


def test_schedule_check_lists_the_deployments_without_serving(tmp_path, monkeypatch):
    import prefect
    from typer.testing import CliRunner

    from flows.cli import app

    def serve(*deployments, **options):
        raise AssertionError("--check must not serve")

    monkeypatch.setattr(prefect, "serve", serve)
    done = CliRunner().invoke(app, ["schedule", "--check", "--work-dir", str(tmp_path)])
    assert done.exit_code == 0, done.output[-2000:]
    assert "retrain-sentiment" in done.output and "0 2 * * * (UTC)" in done.output
    assert "on demand" in done.output
