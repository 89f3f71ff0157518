from pathlib import Path

import pytest
import yaml

from flows.config import ConfigError, data_config, load_profile, resolve_run


def write_profile(tmp_path: Path, content: dict) -> str:
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(content))
    return str(path)


@pytest.mark.parametrize("name", ["default", "smoke"])
def test_builtin_profiles_are_valid_for_every_task(name, tmp_path):
    profile = load_profile(name)
    for task_name in profile.tasks:
        assert data_config(profile, task_name, None, tmp_path).cache_dir == tmp_path / "cache"


def test_unknown_profile_lists_the_builtin_ones():
    with pytest.raises(ConfigError, match=r"built-in profiles: \['benchmark', 'default', 'gpu', 'smoke'\]"):
        load_profile("nope")


def test_bad_model_field_is_named(tmp_path):
    path = write_profile(tmp_path, {"tasks": {"sentiment": {"model": {"cell": "transformer"}}}})
    with pytest.raises(ConfigError, match=r"tasks\.sentiment\.model\.cell"):
        load_profile(path)


def test_unknown_train_field_is_named(tmp_path):
    path = write_profile(tmp_path, {"tasks": {"sentiment": {"train": {"learnin_rate": 0.1}}}})
    with pytest.raises(ConfigError, match=r"tasks\.sentiment\.train\.learnin_rate"):
        load_profile(path)


def test_bad_data_field_is_named_before_any_work(tmp_path):
    profile = load_profile(write_profile(tmp_path, {"tasks": {"sentiment": {"data": {"max_length": -1}}}}))
    with pytest.raises(ConfigError, match=r"tasks\.sentiment\.data\.max_length"):
        data_config(profile, "sentiment", None, tmp_path)


def test_unknown_task_lists_registered_tasks(tmp_path):
    with pytest.raises(ConfigError, match="registered tasks"):
        data_config(load_profile("smoke"), "speech", None, tmp_path)


def test_bad_cell_list(tmp_path):
    with pytest.raises(ConfigError, match="cells"):
        load_profile(write_profile(tmp_path, {"cells": [], "tasks": {}}))


def test_cells_override_is_validated():
    assert load_profile("smoke", ["gru"]).cells == ["gru"]
    with pytest.raises(ConfigError, match=r"cells\.0"):
        load_profile("smoke", ["transformer"])


def test_inference_options_parse_as_key_value_pairs():
    from flows.config import parse_options

    assert parse_options(["beam_width=5", " top_p = 0.9"]) == {"beam_width": "5", "top_p": "0.9"}
    for pairs, reason in ((["beam_width"], "KEY=VALUE"), (["=3"], "KEY=VALUE"), (["a=1", "a=2"], "twice")):
        with pytest.raises(ConfigError, match=reason):
            parse_options(pairs)


def test_a_family_option_is_checked_when_the_profile_is_read(tmp_path):
    profile = tmp_path / "p.yaml"
    profile.write_text("tasks:\n  sentiment:\n    model: {options: {tie_weights: true}}\n")
    with pytest.raises(ConfigError, match=r"tasks\.sentiment\.model\.options\.tie_weights"):
        resolve_run(str(profile), None, None, None, str(tmp_path / "work"))


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_the_gpu_profile_is_refused_where_no_gpu_is_visible_naming_the_field(tmp_path):
    profile = load_profile("gpu")
    for task_name in profile.tasks:
        with pytest.raises(
            ConfigError, match=rf"tasks\.{task_name}\.train\.accelerator: 'gpu', but PyTorch sees no GPU"
        ):
            data_config(profile, task_name, None, tmp_path)


@pytest.mark.parametrize(
    ("train", "field"),
    [
        (
            {"precision": "16-mixed", "accelerator": "cpu"},
            r"train.*precision '16-mixed' needs accelerator 'gpu'",
        ),
        ({"precision": "64"}, r"tasks\.sentiment\.train\.precision"),
        ({"devices": 0}, r"tasks\.sentiment\.train\.devices"),
        ({"strategy": "fsdp"}, r"tasks\.sentiment\.train\.strategy"),
        ({"accelerator": "tpu"}, r"tasks\.sentiment\.train\.accelerator"),
    ],
)
def test_bad_hardware_settings_are_named_before_any_work(tmp_path, train, field):
    with pytest.raises(ConfigError, match=field):
        load_profile(write_profile(tmp_path, {"tasks": {"sentiment": {"train": train}}}))


def test_precision_reads_as_yaml_writes_it(tmp_path):
    profile = load_profile(write_profile(tmp_path, {"tasks": {"sentiment": {"train": {"precision": 32}}}}))
    assert profile.tasks["sentiment"].train.precision == "32"


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a GPU")
def test_half_precision_on_auto_is_refused_on_a_cpu_machine(tmp_path):
    profile = load_profile(
        write_profile(tmp_path, {"tasks": {"sentiment": {"train": {"precision": "16-mixed"}}}})
    )
    with pytest.raises(ConfigError, match=r"tasks\.sentiment\.train\.precision: '16-mixed' needs a GPU"):
        data_config(profile, "sentiment", None, tmp_path)
