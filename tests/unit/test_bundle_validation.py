"""A bundle is checked file by file when loaded: a broken one is one line naming the file, exit status 2."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from flows.cli import app
from serving.predictor import Predictor
from tasks import BundleError


def truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def garble(path):
    path.write_bytes(bytes(range(256)) * 8)


CORRUPTIONS = {
    "graph missing": ("model.onnx", lambda p: p.unlink(), "model.onnx is missing"),
    "graph truncated": ("model.onnx", truncate, "model.onnx is not a loadable ONNX graph"),
    "graph garbled": ("model.onnx", garble, "model.onnx is not a loadable ONNX graph"),
    "graph is a folder": ("model.onnx", lambda p: (p.unlink(), p.mkdir()), "model.onnx is not a file"),
    "tokenizer missing": ("tokenizer.json", lambda p: p.unlink(), "tokenizer.json is missing"),
    "tokenizer truncated": ("tokenizer.json", truncate, "tokenizer.json is not a readable tokenizer"),
    "tokenizer not one": ("tokenizer.json", lambda p: p.write_text("{}"), "tokenizer.json is not a readable"),
    "codec settings missing": ("codec.json", lambda p: p.unlink(), "codec.json is missing"),
    "codec settings truncated": ("codec.json", truncate, "codec.json is not valid JSON"),
    "codec settings not UTF-8": ("codec.json", garble, "codec.json is not valid JSON"),
    "codec settings mistyped": (
        "codec.json",
        lambda p: p.write_text(json.dumps({"labels": "negative", "max_length": 0})),
        "codec.json: labels: Input should be a valid list; max_length",
    ),
    "codec settings lacking a field": (
        "codec.json",
        lambda p: p.write_text(json.dumps({"labels": ["negative", "positive"]})),
        "codec.json: max_length: Field required",
    ),
    "metadata truncated": ("bundle.json", truncate, "bundle.json is not valid JSON"),
    "metadata not an object": (
        "bundle.json",
        lambda p: p.write_text("[1, 2]"),
        "bundle.json: Input should be",
    ),
    "metadata without a task": (
        "bundle.json",
        lambda p: p.write_text("{}"),
        "bundle.json: task: Field required",
    ),
    "metadata naming an unknown task": (
        "bundle.json",
        lambda p: p.write_text(json.dumps({"task": "speech"})),
        "task 'speech' is not installed here",
    ),
    "metadata with a mistyped gate": (
        "bundle.json",
        lambda p: p.write_text(json.dumps({"task": "sentiment", "int8": {"accepted": "maybe"}})),
        "bundle.json: int8.accepted",
    ),
}


@pytest.fixture
def damaged(sentiment_bundle, tmp_path, request):
    name, damage, reason = CORRUPTIONS[request.param]
    bundle = tmp_path / "bundle"
    shutil.copytree(sentiment_bundle, bundle)
    damage(bundle / name)
    return bundle, name, reason


@pytest.mark.parametrize("damaged", list(CORRUPTIONS), indirect=True)
def test_a_damaged_bundle_is_one_line_naming_the_file_and_exit_status_2(damaged, tmp_path):
    bundle, name, reason = damaged
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a fine film"}) + "\n")
    arguments = ["predict", "--model", str(bundle), "-i", str(source), "-o", str(tmp_path / "out.jsonl")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("bundle error: ") and reason in line and str(bundle / name) in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle", "in.jsonl"]  # no output opened


@pytest.mark.parametrize("damaged", ["graph truncated", "codec settings mistyped"], indirect=True)
def test_the_predictor_refuses_a_damaged_bundle_with_a_bundle_error(damaged):
    bundle, name, reason = damaged
    with pytest.raises(BundleError, match=reason.split(":")[0]):
        Predictor(bundle)


def test_a_folder_without_a_bundle_and_a_missing_int8_variant_are_bundle_errors(sentiment_bundle, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a fine film"}) + "\n")
    common = ["-i", str(source), "-o", str(tmp_path / "out.jsonl")]
    empty = CliRunner().invoke(app, ["predict", "--model", str(tmp_path / "nothing"), *common])
    assert empty.exit_code == 2 and "no seqops model bundle" in empty.output
    int8 = CliRunner().invoke(
        app, ["predict", "--model", str(sentiment_bundle), "--quantize", "int8", *common]
    )
    assert int8.exit_code == 2 and "no int8 variant" in int8.output


def test_labels_that_do_not_fit_the_graph_are_a_bundle_error_not_a_crash(sentiment_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(sentiment_bundle, bundle)
    codec = json.loads((bundle / "codec.json").read_text())
    (bundle / "codec.json").write_text(json.dumps({**codec, "labels": ["negative", "neutral", "positive"]}))
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a fine film"}) + "\n")
    arguments = ["predict", "--model", str(bundle), "-i", str(source), "-o", str(tmp_path / "out.jsonl")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 2 and "the graph's outputs do not fit its codec" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_a_class_named_twice_is_refused_when_the_bundle_is_loaded(sentiment_bundle, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(sentiment_bundle, bundle)
    (bundle / "codec.json").write_text(json.dumps({"labels": ["good", "good"], "max_length": 64}))
    with pytest.raises(BundleError, match=r"codec.json: labels: .*names repeated: \['good'\]"):
        Predictor(bundle)
