"""Network families are found by name through their entry points; generic code never names one.

A task names the family that learns it; the trainer and the exporter ask the registry for it, so a
new kind of network is a package and an entry point, not a branch in ``models/train.py`` or
``models/export.py``.
"""

import re
from importlib.metadata import entry_points
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import tasks.common.plugins
from models.config import ModelConfig, TrainConfig
from models.export import export_graphs
from models.family import FAMILIES, Family, family_names, get_family
from models.train import restore_network, save_network, train
from tasks import get_task, task_names
from tasks.common.plugins import PluginError

ROOT = Path(__file__).resolve().parents[2]
BUILTIN = ["classifier", "forecaster", "seq2seq"]
TASKS = ["sentiment", "forecasting", "action_recognition", "translation", "text_generation"]


@pytest.mark.parametrize("name", BUILTIN)
def test_every_builtin_family_is_registered_under_its_name(name):
    # Through seqops' own entry points (pyproject.toml), as a user's package would register one.
    assert name in {point.name for point in entry_points(group="seqops.families")}
    family = get_family(name)
    assert isinstance(family, Family) and family.name == name
    assert name in family_names()


def test_every_task_names_a_registered_family():
    for name in task_names():
        assert get_task(name).family in family_names(), name


def test_an_unknown_family_is_an_error_naming_the_registered_ones():
    with pytest.raises(PluginError) as raised:
        get_family("transformer")
    message = str(raised.value)
    assert "'transformer'" in message and "seqops.families" in message
    assert all(f"'{name}'" in message for name in BUILTIN)


def test_training_an_unknown_family_fails_before_any_work(tmp_path):
    with pytest.raises(PluginError, match="unknown network family 'transformer'"):
        train("transformer", None, ModelConfig(), TrainConfig(), tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("module", ["models/train.py", "models/export.py"])
def test_the_generic_trainer_and_exporter_name_no_task_family_or_shape_key(module):
    source = (ROOT / module).read_text().lower()
    for word in [*TASKS, *BUILTIN, "language_model", "horizon", "target_vocab_size"]:
        assert not re.search(rf"\b{word}\b", source), f"{module} names {word!r}"


class Doubler(Family):
    """A family from a user's package: a linear layer; its export writes a marker instead of a graph."""

    name = "doubler"

    def build_network(self, shape, model_config):
        return nn.Linear(shape["width"], 1)

    def build_module(self, network, shape, train_config):
        raise NotImplementedError

    def loaders(self, prepared, train_config):
        raise NotImplementedError

    def export(self, network, directory, shape, tolerance):
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "model.onnx").write_text(f"{shape['width']} {tolerance}")
        return 0.0


@pytest.fixture
def user_family(monkeypatch):
    """``Doubler`` registered under ``seqops.families`` as an installed package would register it."""
    found = tasks.common.plugins.entry_points

    def with_doubler(group):
        points = list(found(group=group))
        if group == "seqops.families":
            points.append(
                SimpleNamespace(name="doubler", value="user_package:FAMILY", load=lambda: Doubler())
            )
        return points

    monkeypatch.setattr(tasks.common.plugins, "entry_points", with_doubler)
    monkeypatch.setattr(FAMILIES, "_loaded", {})  # forget what other tests loaded, and this one
    return "doubler"


def test_a_users_family_plugs_into_the_generic_exporter_and_restorer(user_family, tmp_path):
    assert user_family in family_names()
    assert export_graphs(user_family, nn.Identity(), tmp_path / "graphs", {"width": 3}, 0.5) == 0.0
    assert (tmp_path / "graphs" / "model.onnx").read_text() == "3 0.5"
    weights = save_network(nn.Linear(3, 1), tmp_path / "network.pt")
    restored = restore_network(user_family, {"width": 3}, ModelConfig(), weights)
    assert torch.equal(restored.weight, torch.load(weights)["weight"]) and not restored.training


def test_a_registered_object_that_is_not_a_family_is_refused(monkeypatch):
    found = tasks.common.plugins.entry_points
    stray = SimpleNamespace(name="stray", value="user_package:NOT_A_FAMILY", load=lambda: object())
    monkeypatch.setattr(
        tasks.common.plugins,
        "entry_points",
        lambda group: [*found(group=group), *([stray] if group == "seqops.families" else [])],
    )
    monkeypatch.setattr(FAMILIES, "_loaded", {})
    with pytest.raises(PluginError, match="'stray' .* is a object, not a Family"):
        get_family("stray")
