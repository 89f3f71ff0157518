"""A batch job killed at any moment finishes, when started again, with exactly the uninterrupted output."""

import json
import os
import signal
import subprocess
import sys
import time

from serving.batch import run_batch

SENTENCES = ["a great and moving film", "dull , boring plot", "brilliant", "the acting is awful", "funny"]


def write_rows(path, count):
    with path.open("w") as stream:
        for index in range(count):
            row = {"id": index, "text": " ".join([SENTENCES[index % 5]] * (1 + index % 3))}
            stream.write("{broken\n" if index % 997 == 0 else json.dumps(row) + "\n")
    return path


def test_killed_job_resumes_to_identical_output(sentiment_bundle, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 40_000)
    run_batch(sentiment_bundle, source, tmp_path / "reference.jsonl", chunk_size=250, show_progress=False)
    output = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    command = [
        sys.executable,
        "-m",
        "flows.cli",
        "predict",
        "--model",
        str(sentiment_bundle),
        "-i",
        str(source),
    ]
    job = subprocess.Popen([*command, "-o", str(output), "--chunk-size", "250", "--no-progress"])
    deadline = time.monotonic() + 120
    while job.poll() is None and time.monotonic() < deadline and len(list(parts.glob("*.done.json"))) < 4:
        time.sleep(0.005)
    os.kill(job.pid, signal.SIGKILL)
    job.wait()
    assert job.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert not output.exists()
    finished = sorted(parts.glob("*.done.json"))
    assert 4 <= len(finished) < 160
    # A kill between a chunk's outputs and its marker, or one that cut short the deletion of the
    # parts: those chunks are predicted again, not duplicated.
    finished[-1].unlink()
    (parts / "9999999.out.tmp").write_bytes(b"half a chunk")
    (parts / finished[0].name.replace("done.json", "out")).unlink()

    report = run_batch(sentiment_bundle, source, output, chunk_size=250, show_progress=False)

    assert report.resumed_chunks == len(finished) - 2
    assert output.read_bytes() == (tmp_path / "reference.jsonl").read_bytes()
    errors = (tmp_path / "out.jsonl.errors.jsonl").read_bytes()
    assert errors == (tmp_path / "reference.jsonl.errors.jsonl").read_bytes()
    assert (report.rows, report.errors) == (40_000, 41)
    rows = [json.loads(line)["row"] for line in output.read_text().splitlines()]
    assert len(rows) == len(set(rows)) == 40_000 - 41
    assert not parts.exists()


def test_leftovers_of_another_job_are_not_reused(sentiment_bundle, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 600)
    output = tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    run_batch(sentiment_bundle, source, output, chunk_size=100, show_progress=False)
    expected = output.read_bytes()
    parts.mkdir()
    (parts / "manifest.json").write_text(json.dumps({"input": "another file"}))
    (parts / "0000000.done.json").write_text("{}")
    report = run_batch(sentiment_bundle, source, output, chunk_size=100, show_progress=False)
    assert report.resumed_chunks == 0 and output.read_bytes() == expected


def test_dask_shards_merge_in_input_order(sentiment_bundle, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 3_000)
    run_batch(sentiment_bundle, source, tmp_path / "local.parquet", chunk_size=200, show_progress=False)
    report = run_batch(
        sentiment_bundle, source, tmp_path / "dask.parquet", chunk_size=200, show_progress=False, workers=2
    )
    assert report.lanes == 2 and report.chunks == 15 and report.errors == 4
    assert (tmp_path / "dask.parquet").read_bytes() == (tmp_path / "local.parquet").read_bytes()
    assert (tmp_path / "dask.parquet.errors.jsonl").read_bytes() == (
        tmp_path / "local.parquet.errors.jsonl"
    ).read_bytes()
