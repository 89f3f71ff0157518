"""A user's own task, packaged and installed outside the source tree, runs through `seqops pipeline` and
`seqops predict` without a change to seqops: it is found through its `seqops.tasks` entry point."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
PACKAGE = Path(__file__).resolve().parents[1] / "plugin_task"
SEQOPS = Path(sys.executable).with_name("seqops")
PROFILE = """
cells: [gru]
tasks:
  toy_sign:
    model: {embedding_dim: 8, hidden_size: 8, dropout: 0.0}
    train: {batch_size: 32, max_epochs: 3, patience: 3, learning_rate: 0.01}
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The toy package built and installed with `pip install --target` into a folder of its own."""
    root = tmp_path_factory.mktemp("plugin")
    source, target = root / "source", root / "site"
    shutil.copytree(PACKAGE, source)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "--target", str(target), str(source)],
        check=True,
        capture_output=True,
    )
    assert list(target.glob("seqops_toy-*.dist-info")), "the package's metadata (its entry points) is missing"
    return root, target


def seqops(args, root, site):
    environment = {
        **os.environ,
        "PYTHONPATH": str(site),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PREFECT_HOME": str(root / "prefect"),
    }
    environment.pop("PREFECT_API_URL", None)
    return subprocess.run(
        [str(SEQOPS), *args], cwd=root, env=environment, capture_output=True, text=True, timeout=600
    )


def test_an_installed_task_trains_ships_and_serves(installed):
    root, site = installed
    (root / "toy.yaml").write_text(PROFILE)
    pipeline = seqops(
        ["pipeline", "--task", "toy_sign", "--profile", "toy.yaml", "--work-dir", "work"], root, site
    )
    assert pipeline.returncode == 0, pipeline.stderr[-3000:]
    assert (
        "toy_sign" in pipeline.stdout
        and "champion gate: promoted version 1: first champion" in pipeline.stdout
    )

    rows = [{"values": [0.5, 1.0, 2.0]}, {"values": [-1.0, -2.5]}, {"values": "not a list"}]
    (root / "rows.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    model = "models:/seqops-toy_sign@champion"
    predict = seqops(["predict", "--model", model, "-i", "rows.jsonl", "-o", "out.jsonl"], root, site)
    assert predict.returncode == 0, predict.stderr[-3000:]
    predictions = [json.loads(line) for line in (root / "out.jsonl").open()]
    assert [p["row"] for p in predictions] == [1, 2]
    assert all(p["label"] in ("down", "up") for p in predictions)
    errors = [json.loads(line) for line in (root / "out.jsonl.errors.jsonl").open()]
    assert errors[0]["row"] == 3 and "non-empty list" in errors[0]["error"]


def test_without_its_package_the_task_is_unknown_and_named_among_the_installed_ones(installed, tmp_path):
    root, _ = installed
    (tmp_path / "toy.yaml").write_text(PROFILE)
    result = seqops(
        ["pipeline", "--task", "toy_sign", "--profile", str(tmp_path / "toy.yaml")], tmp_path, tmp_path
    )
    assert result.returncode == 2
    assert "unknown task 'toy_sign'" in result.stderr and "sentiment" in result.stderr
    assert "Traceback" not in result.stderr
