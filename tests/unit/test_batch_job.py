import csv
import json
import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import run_batch
from serving.bundle import resolve_bundle
from serving.errors import JobError
from serving.predictor import Predictor
from tasks import BundleError

GOOD = ["a great and moving film", "dull , boring plot", "brilliant", "the acting is awful"]


def write_mixed_jsonl(path):
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(GOOD)]
    lines[2:2] = [
        '{"text": "broken',
        json.dumps({"text": ""}),
        json.dumps({"text": 42}),
        json.dumps({"id": 9}),
        json.dumps(["not", "an", "object"]),
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_jsonl_good_rows_predicted_bad_rows_become_errors(sentiment_bundle, tmp_path):
    output = tmp_path / "out.jsonl"
    summary = run_batch(
        sentiment_bundle, write_mixed_jsonl(tmp_path / "in.jsonl"), output, chunk_size=3, show_progress=False
    )
    assert (summary.rows, summary.predicted, summary.errors) == (9, 4, 5)
    predictions = read_jsonl(output)
    assert [p["text"] for p in predictions] == GOOD  # input order kept, ids passed through
    assert [p["id"] for p in predictions] == [0, 1, 2, 3]
    assert all(p["label"] in {"negative", "positive"} and 0.5 <= p["confidence"] <= 1 for p in predictions)
    errors = read_jsonl(tmp_path / "out.jsonl.errors.jsonl")
    assert [e["row"] for e in errors] == [3, 4, 5, 6, 7]
    reasons = " | ".join(e["error"] for e in errors)
    for expected in ("broken JSON", "empty", "must be a string", "missing field 'text'", "JSON object"):
        assert expected in reasons
    assert not list(tmp_path.glob("*.partial"))


def test_predictions_match_the_in_memory_predictor(sentiment_bundle, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in GOOD))
    run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", show_progress=False)
    expected = Predictor(sentiment_bundle).predict_rows([{"text": t} for t in GOOD])
    actual = read_jsonl(tmp_path / "out.jsonl")
    flat = [p for row in actual for p in row["probabilities"].values()]
    assert flat == pytest.approx([p for row in expected for p in row["probabilities"].values()], abs=1e-6)


def test_the_trained_bundle_separates_the_synthetic_classes(sentiment_bundle):
    predictions = Predictor(sentiment_bundle).predict_rows(
        [{"text": "great wonderful film"}, {"text": "boring and awful plot"}]
    )
    assert [p["label"] for p in predictions] == ["positive", "negative"]


def test_csv_in_parquet_out_with_wrong_field_counts(sentiment_bundle, tmp_path):
    source = tmp_path / "in.csv"
    with source.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["id", "text"])
        writer.writerows(
            [[1, "great film"], [2, "a, quoted, comma text"], [3], [4, "bland", "extra"], [5, ""]]
        )
    output = tmp_path / "out.parquet"
    summary = run_batch(sentiment_bundle, source, output, show_progress=False)
    table = pq.read_table(output).to_pylist()
    assert [json.loads(r["input"])["id"] for r in table] == ["1", "2"] and summary.errors == 3
    errors = read_jsonl(tmp_path / "out.parquet.errors.jsonl")
    assert [(e["row"], "fields" in e["error"]) for e in errors] == [(3, True), (4, True), (5, False)]


def test_parquet_input_and_no_error_file_when_all_rows_are_good(sentiment_bundle, tmp_path):
    source = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": GOOD * 5}), source)
    summary = run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", chunk_size=7, show_progress=False)
    assert (summary.predicted, summary.errors) == (20, 0)
    assert len(read_jsonl(tmp_path / "out.jsonl")) == 20
    assert not (tmp_path / "out.jsonl.errors.jsonl").exists()


def test_input_fields_named_like_prediction_fields_are_kept_apart(sentiment_bundle, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "brilliant", "label": "negative", "row": 99}) + "\n")
    run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", show_progress=False)
    (record,) = read_jsonl(tmp_path / "out.jsonl")
    assert record["input_label"] == "negative" and record["input_row"] == 99 and record["row"] == 1
    assert record["label"] in {"negative", "positive"}


def test_parquet_output_keeps_fields_that_vary_between_chunks(sentiment_bundle, tmp_path):
    rows = [
        {"text": "great film", "score": 2},
        {"text": "dull", "score": 2.5, "late": "only here"},
        {"text": "fine", "score": None},
    ]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    run_batch(sentiment_bundle, source, tmp_path / "out.parquet", chunk_size=1, show_progress=False)
    inputs = [json.loads(r["input"]) for r in pq.read_table(tmp_path / "out.parquet").to_pylist()]
    assert inputs == rows  # nothing dropped, nothing truncated


def test_unsupported_formats_fail_clearly(sentiment_bundle, tmp_path):
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "in.csv").write_text("text\nfine\n")
    with pytest.raises(JobError, match="unsupported input"):
        run_batch(sentiment_bundle, tmp_path / "in.txt", tmp_path / "out.jsonl", show_progress=False)
    with pytest.raises(JobError, match="task 'sentiment' offers readers: none"):
        run_batch(
            sentiment_bundle, tmp_path / "in.csv", tmp_path / "o.jsonl", show_progress=False, reader="series"
        )
    with pytest.raises(JobError, match="option beam_width: not an option of this task"):
        run_batch(
            sentiment_bundle,
            tmp_path / "in.csv",
            tmp_path / "o.jsonl",
            show_progress=False,
            options={"beam_width": 2},
        )
    assert not list(tmp_path.glob("*.partial"))
    with pytest.raises(BundleError, match="bundle"):
        resolve_bundle(str(tmp_path))


def test_cli_predict_never_imports_torch(sentiment_bundle, tmp_path):
    source = write_mixed_jsonl(tmp_path / "in.jsonl")
    script = textwrap.dedent(f"""
        import sys
        from typer.testing import CliRunner
        from flows.cli import app
        result = CliRunner().invoke(app, ["predict", "--model", {str(sentiment_bundle)!r}, "--input",
                                          {str(source)!r}, "--output", {str(tmp_path / "o.jsonl")!r}])
        assert result.exit_code == 0, result.output
        print(result.output)
        heavy = sorted(m for m in ("torch", "pytorch_lightning", "prefect") if m in sys.modules)
        assert not heavy, heavy
    """)
    completed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "9 rows: 4 predicted, 5 errors" in completed.stdout


def test_unreadable_input_leaves_no_output_behind(sentiment_bundle, tmp_path):
    broken = tmp_path / "in.parquet"
    broken.write_bytes(b"not a parquet file")
    with pytest.raises(JobError, match="not a readable parquet file"):
        run_batch(sentiment_bundle, broken, tmp_path / "out.jsonl", show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.parquet"]


def test_length_bucketing_returns_predictions_in_input_order(sentiment_bundle):
    texts = [
        "great",
        "a really dull and boring plot with tedious acting",
        "funny film",
        "bland",
        "moving story",
    ]
    bucketed = Predictor(sentiment_bundle, batch_size=2).predict_items(texts)
    one_by_one = [Predictor(sentiment_bundle, batch_size=1).predict_items([t])[0] for t in texts]
    assert [p["label"] for p in bucketed] == [p["label"] for p in one_by_one]
    assert [p["confidence"] for p in bucketed] == pytest.approx(
        [p["confidence"] for p in one_by_one], abs=1e-5
    )


def invoke_predict(bundle, tmp_path, *options):
    from typer.testing import CliRunner

    from flows.cli import app

    source = write_mixed_jsonl(tmp_path / "in.jsonl")
    arguments = ["predict", "--model", str(bundle), "-i", str(source), "-o", str(tmp_path / "o.jsonl")]
    return CliRunner().invoke(app, [*arguments, *options])


def test_cli_refuses_int8_without_a_gated_variant(sentiment_bundle, tmp_path):
    result = invoke_predict(sentiment_bundle, tmp_path, "--quantize", "int8")
    assert result.exit_code == 2 and "no int8 variant" in result.output
    assert not list(tmp_path.glob("o.jsonl*"))


def test_tracked_job_logs_its_report_to_mlflow(sentiment_bundle, tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # a local store keeps artifacts in ./mlruns, as MLflow does by default
    result = invoke_predict(sentiment_bundle, tmp_path, "--track", "--chunk-size", "2")
    assert result.exit_code == 0, result.output
    assert "inputs against the training data" in result.output and "unknown_rate" in result.output
    client = MlflowClient(uri)
    (run,) = client.search_runs([client.get_experiment_by_name("seqops-batch").experiment_id])
    assert run.data.metrics["error_rows"] == 5 and run.data.metrics["predicted"] == 4
    assert run.data.metrics["rows_per_second"] > 0 and "input_unknown_rate" in run.data.metrics
    assert run.data.params["quantize"] == "fp32"
    assert "report.json" in {artifact.path for artifact in client.list_artifacts(run.info.run_id)}


def test_cli_predicts_on_the_cpu_when_asked_by_name(sentiment_bundle, tmp_path):
    result = invoke_predict(sentiment_bundle, tmp_path, "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert len(read_jsonl(tmp_path / "o.jsonl")) == len(GOOD)


@pytest.mark.skipif(
    "CUDAExecutionProvider" in __import__("onnxruntime").get_available_providers(),
    reason="this onnxruntime has the CUDA provider",
)
def test_cli_refuses_cuda_without_onnxruntime_gpu_before_any_output(sentiment_bundle, tmp_path):
    result = invoke_predict(sentiment_bundle, tmp_path, "--device", "cuda")
    assert result.exit_code == 2 and "install onnxruntime-gpu" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("o.jsonl*"))
    with pytest.raises(JobError, match="CUDA execution provider"):
        Predictor(sentiment_bundle, device="cuda")


def test_cli_refuses_an_unknown_device(sentiment_bundle, tmp_path):
    result = invoke_predict(sentiment_bundle, tmp_path, "--device", "tpu")
    assert result.exit_code == 2 and "--device must be one of ['cpu', 'cuda']" in result.output


def test_the_report_says_where_the_time_went_stage_by_stage(sentiment_bundle, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": GOOD[i % 4]}) + "\n" for i in range(3000)) + "{oops\n")
    report = run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", chunk_size=1000, show_progress=False)
    stages = report.stages
    assert list(stages) == [
        "read",
        "parse",
        "encode",
        "wait",
        "onnxruntime",
        "decode",
        "serialise",
        "write",
        "other",
    ]
    assert all(
        stages[name] > 0
        for name in ("read", "parse", "encode", "onnxruntime", "decode", "serialise", "write")
    )
    assert stages["onnxruntime"] == pytest.approx(report.ort_share * report.seconds)
    lane = sum(stages[name] for name in ("wait", "onnxruntime", "decode", "serialise", "write"))
    assert lane <= report.seconds and stages["other"] == pytest.approx(report.seconds - lane)


def test_cli_writes_the_report_as_json_and_refuses_a_report_path_it_cannot_write(sentiment_bundle, tmp_path):
    result = invoke_predict(sentiment_bundle, tmp_path, "--report", str(tmp_path / "report.json"))
    assert result.exit_code == 0, result.output
    assert "time by stage: read" in result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert (report["rows"], report["predicted"], report["errors"]) == (9, 4, 5)
    assert report["stages"]["onnxruntime"] > 0
    for written in tmp_path.glob("o.jsonl*"):
        written.unlink()
    refused = invoke_predict(
        sentiment_bundle, tmp_path, "--report", str(tmp_path / "missing" / "report.json")
    )
    assert refused.exit_code == 2 and "--report" in refused.output and "Traceback" not in refused.output
    assert not list(tmp_path.glob("o.jsonl*"))
