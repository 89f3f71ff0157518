"""`seqops tune`'s parts: search spaces, their checks, the pruning callback, the studies' storage."""

import optuna
import pytest

from flows.config import ConfigError, TaskSettings, load_profile
from flows.search_space import Dimension, check_keys, merged_space, with_values
from flows.studies import best_profile, storage_url
from flows.tune import task_space
from models.config import ModelConfig, TrainConfig
from tasks import get_task, task_names


def test_every_registered_tasks_search_space_names_real_settings_and_valid_ranges():
    for name in task_names():
        task = get_task(name)
        space = task_space(task, TaskSettings(), ["lstm"])  # raises on a key that is no setting
        assert space, f"{name} declares nothing to search"
        data_fields = set(task.config_model.model_fields)
        for key, dimension in space.items():
            section, _, field = key.partition(".")
            assert (
                field
                in {
                    "data": data_fields,
                    "model": ModelConfig.model_fields,
                    "train": TrainConfig.model_fields,
                }[section]
            )
            assert isinstance(dimension, Dimension)


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ({"low": 1}, "both low and high"),
        ({"low": 5, "high": 1}, "above high"),
        ({"low": 0, "high": 1, "log": True}, "low > 0"),
        ({"choices": []}, "must not be empty"),
        ({"low": 1, "high": 2, "choices": [1]}, "either low and high, or choices"),
        ({"low": 1, "high": 2, "step": 1}, "step"),
    ],
)
def test_a_bad_dimension_in_a_profile_fails_naming_its_key(tmp_path, entry, reason):
    profile = tmp_path / "space.yaml"
    profile.write_text(f"tasks:\n  sentiment:\n    search_space:\n      model.hidden_size: {entry}\n")
    with pytest.raises(ConfigError, match=rf"search_space\.model\.hidden_size.*{reason}"):
        load_profile(str(profile))


def test_a_profile_narrows_widens_and_removes_the_tasks_dimensions():
    declared = {"model.hidden_size": {"low": 32, "high": 256}, "model.dropout": {"low": 0.0, "high": 0.5}}
    space = merged_space(
        declared,
        {
            "model.hidden_size": Dimension(low=8, high=16),
            "model.dropout": None,
            "train.batch_size": Dimension(choices=[8, 16]),
        },
    )
    assert space == {
        "model.hidden_size": Dimension(low=8, high=16),
        "train.batch_size": Dimension(choices=[8, 16]),
    }


def test_keys_that_are_no_setting_are_refused_naming_the_key_and_the_known_fields():
    fields = {"data": {"lookback"}, "model": {"hidden_size"}, "train": {"learning_rate"}}
    check_keys({"model.hidden_size": 1, "model.options.tie_weights": 1, "data.lookback": 1}, fields)
    with pytest.raises(
        ValueError,
        match=r"search_space\.model\.hidden: model has no field 'hidden'; known: \['hidden_size'\]",
    ):
        check_keys({"model.hidden": 1}, fields)
    with pytest.raises(ValueError, match="section one of"):
        check_keys({"optimizer.lr": 1}, fields)
    settings = TaskSettings(search_space={"model.hiden_size": Dimension(low=1, high=2)})
    with pytest.raises(ConfigError, match="task 'sentiment': search_space.model.hiden_size"):
        task_space(get_task("sentiment"), settings, ["gru"])


def test_drawn_values_land_in_their_sections_and_integer_ranges_draw_integers():
    study = optuna.create_study()
    trial = study.ask()
    space = {
        "model.hidden_size": Dimension(low=8, high=64, log=True),
        "train.learning_rate": Dimension(low=1e-4, high=1e-2, log=True),
        "model.pooling": Dimension(choices=["mean", "max"]),
        "model.options.tie_weights": Dimension(choices=[True]),
        "data.lookback": Dimension(choices=[96]),
    }
    values = {key: dimension.suggest(trial, key) for key, dimension in space.items()}
    assert isinstance(values["model.hidden_size"], int) and 8 <= values["model.hidden_size"] <= 64
    assert isinstance(values["train.learning_rate"], float)
    drawn = with_values({"model": {"dropout": 0.1, "options": {"a": 1}}, "train": {}}, values)
    assert drawn["model"]["options"] == {"a": 1, "tie_weights": True}
    assert drawn["data"] == {"lookback": 96} and drawn["model"]["dropout"] == 0.1
    TaskSettings.model_validate(drawn)  # what a trial trains with is a valid profile entry


def test_several_cells_become_a_dimension_and_one_cell_stays_fixed():
    task = get_task("sentiment")
    assert task_space(task, TaskSettings(), ["rnn", "gru"])["model.cell"] == Dimension(choices=["rnn", "gru"])
    assert "model.cell" not in task_space(task, TaskSettings(), ["gru"])


def test_studies_live_in_the_tracking_database_or_where_the_user_says():
    assert storage_url("sqlite:///mlflow.db", None) == "sqlite:///mlflow.db"
    assert storage_url("http://mlflow:5000", "postgresql://u:p@db/mlflow") == "postgresql://u:p@db/mlflow"
    with pytest.raises(ConfigError, match=r"--storage or SEQOPS_STUDY_STORAGE") as raised:
        storage_url("https://user:secret@mlflow.example.com", None)
    assert "secret" not in str(raised.value)


def test_relative_sqlite_urls_are_made_absolute_for_workers_elsewhere(tmp_path, monkeypatch):
    from flows.studies import absolute_sqlite

    monkeypatch.chdir(tmp_path)
    assert absolute_sqlite("sqlite:///mlflow.db") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert absolute_sqlite("sqlite:////abs/m.db") == "sqlite:////abs/m.db"
    assert absolute_sqlite("postgresql://u@db/mlflow") == "postgresql://u@db/mlflow"


def test_the_best_profile_holds_the_tuned_task_alone_and_loads_as_a_profile(tmp_path):
    base = load_profile("smoke").model_dump(mode="json")
    settings = {
        "data": {"limit": 10},
        "model": {"cell": "gru", "hidden_size": 12},
        "train": {"learning_rate": 0.01},
    }
    path = tmp_path / "best.yaml"
    path.write_text(best_profile(base, "sentiment", settings, "s1"))
    profile = load_profile(str(path))
    assert profile.cells == ["gru"] and list(profile.tasks) == ["sentiment"]
    assert profile.tasks["sentiment"].model.hidden_size == 12 and profile.seeds == base["seeds"]


def test_the_pruning_callback_stops_a_trial_the_pruner_gives_up_on(sentiment_prepared, tmp_path):
    from flows.trials import PruneOnValidation
    from models.train import train

    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=2.0))
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned, match="epoch 0: val_macro_f1"):
        train(
            "classifier",
            sentiment_prepared,
            ModelConfig(embedding_dim=8, hidden_size=8),
            TrainConfig(max_epochs=3, batch_size=32),
            tmp_path,
            callbacks=[PruneOnValidation(trial, "val_macro_f1", "max")],
        )
    assert list(trial.storage.get_trial(trial._trial_id).intermediate_values) == [0]


def test_seeds_is_a_positive_count_named_when_wrong(tmp_path):
    profile = tmp_path / "seeds.yaml"
    profile.write_text("seeds: 0\ntasks: {}\n")
    with pytest.raises(ConfigError, match="seeds"):
        load_profile(str(profile))


def test_a_trial_whose_drawn_settings_are_refused_fails_with_the_reason_in_its_row(tmp_path):
    from flows.trials import TrialSpec, _objective

    spec = TrialSpec(
        study="s",
        storage="sqlite://",
        tracking_uri="sqlite://",
        experiment_id="0",
        parent_run_id="p",
        task_name="sentiment",
        settings={"data": {}, "model": {}, "train": {"max_epochs": 1}},
        space={"model.num_layers": {"low": 0, "high": 0}},
        data_dir=None,
        cache_dir=str(tmp_path),
        num_threads=1,
        deadline=None,
        objective=("val_macro_f1", "max"),
    )
    row: dict = {}
    trial = optuna.create_study().ask()
    with pytest.raises(Exception, match="num_layers"):
        _objective(spec, trial, row)
    assert row["trial"] == 0 and row["model.num_layers"] == 0
    assert row["error"].startswith("model.num_layers: Input should be greater than or equal to 1")


def test_an_objective_names_its_metric_and_direction():
    from flows.tune import parse_objective

    assert parse_objective("val_loss:min") == ("val_loss", "min")
    assert parse_objective("val:f1:max") == ("val:f1", "max")
    for bad in ("val_loss", "val_loss:lowest", ":max"):
        with pytest.raises(ConfigError, match=f"--objective {bad}: write it as METRIC:max or METRIC:min"):
            parse_objective(bad)


def test_the_trial_score_is_the_objectives_best_epoch_and_an_unlogged_metric_is_named(
    sentiment_prepared, tmp_path
):
    from flows.trials import PruneOnValidation
    from models.train import train

    study = optuna.create_study(direction="minimize", pruner=optuna.pruners.NopPruner())
    trial = study.ask()
    scorer = PruneOnValidation(trial, "val_loss", "min")
    settings = (ModelConfig(embedding_dim=8, hidden_size=8), TrainConfig(max_epochs=3, batch_size=32))
    train("classifier", sentiment_prepared, *settings, tmp_path / "a", callbacks=[scorer])
    reported = study._storage.get_trial(trial._trial_id).intermediate_values
    assert len(reported) == 3 and scorer.best == min(reported.values())
    missing = PruneOnValidation(study.ask(), "val_bleu", "max")
    with pytest.raises(
        ValueError, match=r"--objective val_bleu: the network logs no such metric; it logs \['val_"
    ):
        train("classifier", sentiment_prepared, *settings, tmp_path / "b", callbacks=[missing])


def test_the_trials_table_ranks_by_the_objective_and_counts_trials_the_timeout_kept_back():
    from flows.tune_cli import trials_table

    rows = [
        {"trial": 0, "state": "complete", "value": 0.2, "model.hidden_size": 8},
        {"trial": 1, "state": "complete", "value": 0.1, "model.hidden_size": 16},
        {"trial": 2, "state": "pruned", "model.hidden_size": 4},
        {"state": "not started: --timeout reached"},
        {"state": "failed"},
    ]
    result = {"study": "s", "monitor": "val_loss", "direction": "minimize", "trials": rows}
    table = trials_table(result)
    assert list(table.columns[0].cells) == ["1", "0", "2", ""]
    assert list(table.columns[1].cells)[-1] == "failed"
    assert table.caption == "1 more not started: --timeout reached"
    result["direction"] = "maximize"
    assert list(trials_table(result).columns[0].cells)[:2] == ["0", "1"]
