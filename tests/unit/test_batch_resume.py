"""A batch job killed at any moment finishes, when started again, with exactly the uninterrupted output."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from serving.batch import run_batch
from serving.parts import PartStore

EARLIER_JOBS = ["another input", "the input rewritten", "another chunk size", "another model"]
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


class Killed(BaseException):
    """Stands for a SIGKILL: nothing after it runs, no handler of ``Exception`` catches it."""


def killed_after(chunks, bundle, source, output, chunk_size, monkeypatch):
    """Run a job that dies once it has finished ``chunks`` chunks: real leftovers in ``<output>.parts``."""
    save = PartStore.save

    def save_then_die(store, result):
        save(store, result)
        if len(store.finished()) == chunks:
            raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(PartStore, "save", save_then_die)
        with pytest.raises(Killed):
            run_batch(bundle, source, output, chunk_size=chunk_size, show_progress=False)


def rows_of_first_chunk(path, chunk_size):
    return [line for line in path.read_bytes().splitlines() if json.loads(line)["row"] <= chunk_size]


def flip_labels(bundle, folder):
    """Another model: the same graph with its class names the other way round."""
    shutil.copytree(bundle, folder)
    codec = json.loads((folder / "codec.json").read_text())
    (folder / "codec.json").write_text(json.dumps({**codec, "labels": codec["labels"][::-1]}))
    return folder


def reverse_lines(source, target):
    """``target`` holds ``source``'s rows in reverse order: other rows, the same size."""
    target.write_bytes(b"".join(reversed(source.read_bytes().splitlines(keepends=True))))
    return target


@pytest.mark.parametrize("other", EARLIER_JOBS)
def test_leftovers_of_another_job_are_discarded_and_the_output_equals_a_clean_run(
    other, sentiment_bundle, tmp_path, monkeypatch
):
    source, output = write_rows(tmp_path / "in.jsonl", 600), tmp_path / "out.jsonl"
    parts = tmp_path / "out.jsonl.parts"
    earlier = {"bundle": sentiment_bundle, "source": source, "chunk_size": 100}
    if other == "another input":  # of the same size and time: only its path tells it apart
        earlier["source"] = reverse_lines(source, tmp_path / "other.jsonl")
        os.utime(earlier["source"], ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns))
    elif other == "another chunk size":
        earlier["chunk_size"] = 60
    elif other == "another model":
        earlier["bundle"] = flip_labels(sentiment_bundle, tmp_path / "flipped")
    killed_after(3, output=output, monkeypatch=monkeypatch, **earlier)
    if other == "the input rewritten":  # the same path and size, other rows, written a second later
        written = source.stat()
        reverse_lines(tmp_path / "in.jsonl", tmp_path / "rewritten.jsonl").replace(source)
        os.utime(source, ns=(written.st_atime_ns, written.st_mtime_ns + 10**9))
    assert len(list(parts.glob("*.done.json"))) == 3 and (parts / "manifest.json").is_file()
    run_batch(sentiment_bundle, source, tmp_path / "clean.jsonl", chunk_size=100, show_progress=False)
    clean_first_chunk = rows_of_first_chunk(tmp_path / "clean.jsonl", 100)
    leftover = (parts / "0000000.out").read_bytes().splitlines()
    assert leftover and leftover != clean_first_chunk  # reusing the leftovers would change the output

    report = run_batch(sentiment_bundle, source, output, chunk_size=100, show_progress=False)

    assert output.read_bytes() == (tmp_path / "clean.jsonl").read_bytes()
    errors = (tmp_path / "out.jsonl.errors.jsonl").read_bytes()
    assert errors == (tmp_path / "clean.jsonl.errors.jsonl").read_bytes()
    assert report.resumed_chunks == 0 and report.rows == 600 and not parts.exists()


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
