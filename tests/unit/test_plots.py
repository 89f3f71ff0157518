"""Every plot the tasks log reads well: drawn as MLflow saves it and checked by ``plot_rules``.

The figures come from the tasks' own ``diagnostics`` hooks, on hand-made evaluations at the sizes that
broke before (2, 6 and 24 classes with long names; 3 to 40 tokens; long and short lookbacks) and on the
small trained models' real predictions. The last tests prove that the checker fails on what it guards.
"""

from __future__ import annotations

import os
from types import SimpleNamespace

import datasets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from plot_rules import violations

from serving.predictor import Predictor
from tasks import get_task, task_names
from tasks.common.hooks import Evaluation, Figure

NATOPS = ["I have command", "All clear", "Not clear", "Spread wings", "Fold wings", "Lock wings"]
LONG_NAMES = [f"{name} ({hand} hand)" for hand in ("left", "right", "both", "no") for name in NATOPS]
SAVE_TO = os.environ.get("SEQOPS_PLOT_DIR")  # set it to look at the PNGs these tests draw


def figures(task_name: str, evaluation: Evaluation) -> list[Figure]:
    """The figures a task's diagnostics hook makes of ``evaluation``."""
    return [a for a in get_task(task_name).diagnostics(evaluation) if isinstance(a, Figure)]


def assert_legible(artifacts: list[Figure], label: str) -> None:
    """Every figure passes every rule (and is saved under ``SEQOPS_PLOT_DIR`` when it is set)."""
    assert artifacts, "the hook made no figure"
    for artifact in artifacts:
        found = violations(artifact.figure)  # the first drawing, as MLflow's one ``savefig`` makes it
        if SAVE_TO:
            artifact.figure.savefig(os.path.join(SAVE_TO, f"{label}-{artifact.name}"))
        plt.close(artifact.figure)
        assert found == [], f"{label} {artifact.name}:\n" + "\n".join(found)


def classification(labels: list[str], matrix: np.ndarray, title: str = "t") -> Evaluation:
    """An evaluation whose predictions make the confusion ``matrix`` (rows true, columns predicted)."""
    actual, predicted = np.nonzero(np.ones_like(matrix))
    counts = matrix.ravel()
    predictions = [{"label_id": int(p)} for p in np.repeat(predicted, counts)]
    return Evaluation(
        SimpleNamespace(labels=labels), None, predictions, np.repeat(actual, counts), None, title
    )


@pytest.mark.parametrize(
    ("task_name", "labels", "scale"),
    [
        ("sentiment", ["negative", "positive"], 1),
        ("sentiment", ["negative", "positive"], 400),  # thousands in a cell, as on SST-2's test split
        ("action_recognition", NATOPS, 1),
        ("action_recognition", LONG_NAMES, 1),
    ],
)
def test_confusion_matrices_read_well(task_name, labels, scale, request):
    rng = np.random.default_rng(len(labels))
    matrix = rng.integers(0, 4, (len(labels), len(labels))) + np.diag(rng.integers(8, 30, len(labels)))
    matrix[-1] = 0  # a class with no test rows: its recall is undefined, not 0
    title = f"{task_name} lstm-h128-l2-bidirectional-mean-pooling seed 3: test"
    assert_legible(figures(task_name, classification(labels, matrix * scale, title)), request.node.name)


def test_a_confusion_matrix_colour_scale_starts_at_zero():
    """The smallest count is not the lightest colour unless it is 0 (it vanished when it was)."""
    (artifact,) = figures("sentiment", classification(["negative", "positive"], np.array([[40, 5], [9, 30]])))
    (image,) = artifact.figure.axes[0].images
    assert image.norm.vmin == 0
    plt.close(artifact.figure)


def translation(shapes: list[tuple[int, int]]) -> Evaluation:
    """A translation evaluation whose attention records have (output, source) token counts ``shapes``."""
    rng = np.random.default_rng(0)
    words = ["▁ein", "▁Mann", "▁fährt", "▁Fahrrad", "▁Feuerwehrmannsausrüstung", "."]
    records = [
        {
            "translation": "",
            "score": -1.0,
            "source_tokens": [words[i % len(words)] for i in range(source)],
            "target_tokens": [words[(i + 2) % len(words)] for i in range(target)],
            "attention": rng.dirichlet(np.full(source, 0.3), target).tolist(),
        }
        for target, source in shapes
    ]

    def predict(rows, keep_attention=False, beam_width=None):
        return records[: len(rows)] if keep_attention else [{"translation": "", "score": 0.0}] * len(rows)

    split = datasets.Dataset.from_dict({"source": ["a b"] * len(shapes), "target": ["c d"] * len(shapes)})
    codec = SimpleNamespace(target_tokenizer=SimpleNamespace(normalizer=SimpleNamespace(normalize_str=str)))
    return Evaluation(codec, split, [], [], predict, "translation gru-h256-bi: test")


@pytest.mark.parametrize(
    "shapes", [[(40, 35)], [(3, 3)], [(40, 35), (3, 3), (12, 20), (25, 8)]], ids=["40x35", "3x3", "mixed"]
)
def test_attention_maps_read_well(shapes, request):
    assert_legible(figures("translation", translation(shapes)), request.node.name)


def forecasting(windows: int, lookback: int, horizon: int) -> Evaluation:
    steps = np.arange(windows + lookback + horizon)
    series = 400 + 30 * np.sin(steps / 24 * 2 * np.pi)
    histories = np.stack([series[i : i + lookback] for i in range(windows)])
    futures = np.stack([series[i + lookback : i + lookback + horizon] for i in range(windows)])
    predictions = [
        {"forecast": (f + np.random.default_rng(i).normal(0, 3, horizon)).tolist()}
        for i, f in enumerate(futures)
    ]
    references = SimpleNamespace(histories=histories, futures=futures)
    return Evaluation(None, None, predictions, references, None, "forecasting lstm-h64-l1: test")


@pytest.mark.parametrize(("windows", "lookback", "horizon"), [(500, 336, 24), (40, 8, 1), (2, 96, 12)])
def test_forecast_plots_read_well(windows, lookback, horizon, request):
    assert_legible(figures("forecasting", forecasting(windows, lookback, horizon)), request.node.name)


@pytest.mark.parametrize(("lookback", "horizon"), [(336, 24), (8, 1)])
def test_the_forecast_is_not_squeezed_into_a_corner(lookback, horizon):
    """The forecast spans a fifth of the time axis (unless all history fits), a one-step one is a mark."""
    (artifact,) = figures("forecasting", forecasting(40, lookback, horizon))
    axes = artifact.figure.axes[0]
    start, end = axes.get_xlim()
    forecast = next(line for line in axes.lines if line.get_label() == "forecast")
    assert (horizon - 0.5) / (end - start) >= 0.2 or start < -lookback
    assert forecast.get_marker() not in (None, "None", "")
    plt.close(artifact.figure)


@pytest.mark.parametrize("fixture", ["action_model", "forecasting_model", "translation_model"])
def test_plots_of_the_small_trained_models_read_well(fixture, request):
    """The hooks on real predictions, evaluated as ``flows.tracking.log_diagnostics`` does."""
    task, prepared, bundle, *_ = request.getfixturevalue(fixture)
    predictor = Predictor(bundle)
    split = prepared.splits["test"]
    rows, references = task.references(split, predictor.codec)
    evaluation = Evaluation(
        predictor.codec, split, predictor.predict_rows(rows), references, predictor.predict_rows, "test"
    )
    assert_legible(figures(task.name, evaluation), request.node.name)


def gradient_summary(decay: float, epochs: int = 30) -> dict:
    """A ``GradientFlow.summary()`` of a long fit of a stacked bidirectional network, clipping often."""
    rng = np.random.default_rng(0)
    layers = ["network.embedding", "network.head"] + [
        f"network.encoder.{side}_layers.{n}" for n in (0, 1) for side in ("forward", "backward")
    ]
    profile = np.exp(-decay * np.arange(60)[::-1]).tolist()
    return {
        "hidden_profiles": {"first epoch": profile, "last epoch": profile},
        "profile_epochs": {"first epoch": 0, "last epoch": epochs - 1},
        "layer_norms": [{name: float(rng.lognormal()) for name in layers} for _ in range(epochs)],
        "global_norms": rng.lognormal(size=epochs).tolist(),
        "clipped_steps": rng.integers(0, 50, epochs).tolist(),
        "steps": [50] * epochs,
        "epochs": list(range(epochs)),
        "clip_norm": 1.0,
        "recurrent_layer": "network.encoder.forward_layers.1",
    }


def test_gradient_flow_plots_read_well(request):
    """``flows.gradient_plots`` (its own tests draw real fits; here: many layers, epochs, a long title)."""
    from flows.gradient_plots import cell_gradient_figure, compare_cells_figure

    title = "action_recognition lstm-h128-l2-bidirectional-mean-pooling seed 3: gradient flow"
    cells = {"rnn": gradient_summary(0.5), "lstm": gradient_summary(0.05), "gru": gradient_summary(0.02)}
    artifacts = [
        Figure("gradient_flow.png", cell_gradient_figure(gradient_summary(0.1), title)),
        Figure("gradient_flow_by_cell.png", compare_cells_figure(cells, title)),
    ]
    assert_legible(artifacts, request.node.name)


def test_every_task_that_plots_is_checked_here():
    """A task whose hook starts drawing figures must get a test above (text generation logs tables)."""
    checked = {"sentiment", "action_recognition", "translation", "forecasting"}
    evaluation = Evaluation(SimpleNamespace(settings={"sample_prompt": "To be"}), None, [], None, None, "t")
    evaluation.predict = lambda rows: [{"text": "x"}] * len(rows)
    assert figures("text_generation", evaluation) == []
    assert set(task_names()) - checked <= {"text_generation"}


# The checker itself: each rule must fail on a figure that breaks it, or the tests above prove nothing.


def heatmap(text_colour: str, **text_options) -> plt.Figure:
    figure, axes = plt.subplots(figsize=(4, 3), layout="constrained")
    axes.imshow(np.array([[0.0, 9.0], [1.0, 8.0]]), cmap="Blues")  # the old defect: vmin at the data's min
    for (row, column), value in np.ndenumerate([[0, 9], [1, 8]]):
        axes.text(column, row, str(value), color=text_colour, ha="center", va="center", **text_options)
    return figure


def test_the_checker_passes_a_legible_figure():
    figure, axes = plt.subplots(figsize=(4, 3), layout="constrained")
    axes.plot([0, 1], [0, 1])
    axes.set(title="fine", xlabel="x", ylabel="y")
    assert violations(figure) == []


def test_the_checker_flags_white_text_on_white():
    figure = plt.figure(figsize=(3, 2))
    figure.text(0.5, 0.5, "invisible", color="white")
    assert [v for v in violations(figure) if "'invisible'" in v and "contrast 1.00" in v]


def test_the_checker_flags_counts_that_vanish_into_their_cells():
    found = violations(heatmap("white"))
    assert any("annotation '0'" in v and "contrast" in v for v in found)  # white on the lightest blue
    assert not any("annotation '9'" in v for v in found)  # white on the darkest blue reads well
    found = violations(heatmap("black"))
    assert any("annotation '9'" in v and "contrast" in v for v in found)
    assert not any("annotation '0'" in v for v in found)


def test_the_checker_reads_mesh_colours_too():
    figure, axes = plt.subplots(figsize=(4, 3))
    axes.pcolormesh([[0.0, 1.0]], cmap="gray", vmin=0, vmax=1)  # black cell left, white cell right
    axes.text(0.5, 0.5, "left", color="black", ha="center", va="center")
    axes.text(1.5, 0.5, "right", color="black", ha="center", va="center")
    found = violations(figure)
    assert any("'left'" in v and "contrast" in v for v in found) and not any("'right'" in v for v in found)


def test_the_checker_flags_text_outside_the_figure():
    figure, axes = plt.subplots(figsize=(3, 2))
    axes.set_ylabel("a y label pushed off the left edge", labelpad=80)
    figure.text(0.98, 0.5, "cut off at the right")
    found = violations(figure)
    assert any("y axis label" in v and "leaves the figure" in v for v in found)
    assert any("'cut off at the right'" in v and "leaves the figure" in v for v in found)


def test_the_checker_flags_overlapping_tick_labels_and_tiny_fonts():
    figure, axes = plt.subplots(figsize=(3, 2), layout="constrained")
    axes.set_xticks(range(12), [f"a long class name {i}" for i in range(12)])
    axes.set_yticks([0, 1], ["tiny", "print"], fontsize=5)
    found = violations(figure)
    assert any(
        "x tick label 'a long class name 0' overlaps x tick label 'a long class name 1'" in v for v in found
    )
    assert any("y tick label 'tiny'" in v and "font 5.0 pt" in v for v in found)


def test_the_checker_judges_rotated_labels_by_their_own_box():
    """Labels at 45 degrees whose upright boxes overlap but whose text does not pass; crowded ones fail."""
    for step, crowded in ((0.4, False), (0.08, True)):
        figure, axes = plt.subplots(figsize=(6, 4), layout="constrained")
        axes.set_xlim(-0.5, 3.5)
        axes.set_xticks(np.arange(4) * step, [f"class name {i}" for i in range(4)])
        plt.setp(axes.get_xticklabels(), rotation=45, ha="right", rotation_mode="anchor")
        found = violations(figure)
        first, second = (t.get_window_extent() for t in axes.get_xticklabels()[:2])
        assert first.overlaps(second)  # the upright boxes overlap either way
        assert any("overlaps" in v for v in found) == crowded, found
        plt.close(figure)
