"""One job owns an output at a time, an output is never the input, and refused outputs leave nothing."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from serving.batch import run_batch
from serving.errors import JobError, OutputBusy
from serving.ownership import OutputLock
from serving.parts import PartStore

ROOT = Path(__file__).resolve().parents[2]
TEXTS = ["a great and moving film", "dull , boring plot", "brilliant", "the acting is awful", "fine"]


def write_rows(path: Path, count: int = 40) -> Path:
    path.write_text(
        "".join(json.dumps({"id": i, "text": TEXTS[i % len(TEXTS)]}) + "\n" for i in range(count))
    )
    return path


def cli_predict(bundle: Path, source: Path, output: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "flows.cli", "predict", "--model", str(bundle)]
    return subprocess.run(
        [*command, "-i", str(source), "-o", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_second_job_on_the_same_output_stops_at_once_and_the_first_finishes_intact(
    sentiment_bundle, tmp_path, monkeypatch
):
    source = write_rows(tmp_path / "in.jsonl")
    lone = tmp_path / "lone.jsonl"
    run_batch(sentiment_bundle, source, lone, chunk_size=10, show_progress=False)
    first_chunk_saved, second_job_done = threading.Event(), threading.Event()
    save = PartStore.save

    def save_then_wait(store: PartStore, result) -> None:  # holds the first job mid-way, lock held
        save(store, result)
        if result.index == 0:
            first_chunk_saved.set()
            assert second_job_done.wait(120)

    monkeypatch.setattr(PartStore, "save", save_then_wait)
    output, outcome = tmp_path / "out.jsonl", []
    first = threading.Thread(
        target=lambda: outcome.append(run_batch(sentiment_bundle, source, output, 10, show_progress=False))
    )
    first.start()
    assert first_chunk_saved.wait(120)
    try:
        second = cli_predict(sentiment_bundle, source, output)
    finally:
        second_job_done.set()
        first.join(120)
    assert second.returncode == 2, second.stderr
    assert "being written by another seqops job" in second.stderr and f"pid {os.getpid()}" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1 and "Traceback" not in second.stdout + second.stderr
    assert outcome and outcome[0].predicted == 40
    assert output.read_bytes() == lone.read_bytes()
    assert (
        not output.with_name("out.jsonl.lock").exists() and not output.with_name("out.jsonl.parts").exists()
    )


def test_the_lock_names_its_holder_and_a_refused_job_removes_the_folders_it_made(tmp_path):
    output = tmp_path / "out.jsonl"
    with OutputLock(output):
        with pytest.raises(OutputBusy, match=f"pid {os.getpid()}"), OutputLock(tmp_path / "out.jsonl"):
            pass
        deep = tmp_path / "new" / "deeper" / "out.jsonl"
        with OutputLock(deep):
            assert deep.parent.is_dir()
    assert not (tmp_path / "new").exists() and sorted(p.name for p in tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["same", "symbolic link", "hard link", "relative path", "errors file"])
def test_an_output_that_is_the_input_is_refused_and_the_input_kept_byte_for_byte(
    name, sentiment_bundle, tmp_path, monkeypatch
):
    source = write_rows(tmp_path / "in.jsonl", 5)
    before = source.read_bytes()
    output = {
        "same": source,
        "symbolic link": tmp_path / "link.jsonl",
        "hard link": tmp_path / "hard.jsonl",
        "relative path": Path("sub/../in.jsonl"),
        "errors file": tmp_path / "out.jsonl",
    }[name]
    if name == "symbolic link":
        output.symlink_to(source)
    elif name == "hard link":
        os.link(source, output)
    elif name == "relative path":
        (tmp_path / "sub").mkdir()
        monkeypatch.chdir(tmp_path)
    elif name == "errors file":
        source = source.rename(tmp_path / "out.jsonl.errors.jsonl")
    with pytest.raises(JobError, match="is the input file"):
        run_batch(sentiment_bundle, source, output, show_progress=False)
    assert source.read_bytes() == before
    assert not list(tmp_path.glob("*.lock")) and not list(tmp_path.glob("*.parts"))


def test_the_cli_refuses_an_output_that_is_the_input_in_one_line(sentiment_bundle, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 5)
    before = source.read_bytes()
    done = cli_predict(sentiment_bundle, source, source)
    assert done.returncode == 2 and "is the input file" in done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stdout + done.stderr
    assert source.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize(
    ("target", "reason"),
    [
        (lambda tmp: tmp, "is a folder"),
        (lambda tmp: tmp / "in.jsonl" / "out.jsonl", "is a file, not a folder"),
        (lambda tmp: Path("/sys/seqops-test-output.jsonl"), "cannot write the output"),
        (lambda tmp: Path("/sys/seqops-test/out.jsonl"), "cannot create the output folder"),
        (lambda tmp: tmp / "out.txt", "unsupported output"),
    ],
    ids=["folder", "under a file", "unwritable folder", "uncreatable folder", "suffix"],
)
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
    target, reason, sentiment_bundle, tmp_path
):
    source = write_rows(tmp_path / "in.jsonl", 5)
    with pytest.raises(JobError, match=reason):
        run_batch(sentiment_bundle, source, target(tmp_path), show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_missing_output_folders_are_created(sentiment_bundle, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 5)
    output = tmp_path / "results" / "today" / "out.jsonl"
    assert run_batch(sentiment_bundle, source, output, show_progress=False).predicted == 5
    assert sorted(p.name for p in output.parent.iterdir()) == ["out.jsonl"]


def test_a_planted_link_in_place_of_the_lock_is_refused_and_its_target_untouched(sentiment_bundle, tmp_path):
    source, victim = write_rows(tmp_path / "in.jsonl", 5), tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "out.jsonl.lock").symlink_to(victim)
    with pytest.raises(JobError, match="out.jsonl.lock: it is a symbolic link"):
        run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", show_progress=False)
    assert victim.read_text() == "precious" and not (tmp_path / "out.jsonl").exists()


def test_a_planted_link_in_place_of_the_parts_folder_is_removed_not_followed(sentiment_bundle, tmp_path):
    source, elsewhere = write_rows(tmp_path / "in.jsonl", 5), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_text("precious")
    (tmp_path / "out.jsonl.parts").symlink_to(elsewhere)
    assert run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", show_progress=False).predicted == 5
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]


def test_damaged_leftovers_of_a_killed_job_are_discarded_not_fatal(sentiment_bundle, tmp_path):
    source, parts = write_rows(tmp_path / "in.jsonl", 5), tmp_path / "out.jsonl.parts"
    parts.mkdir()
    (parts / "manifest.json").write_text("{truncated")
    (parts / "0000000.done.json").write_text("{truncated")
    (tmp_path / "out.jsonl.1a2b3c4d5e6f.partial").write_text("half a merge")
    assert run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", show_progress=False).predicted == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl"]


def test_an_output_named_like_an_errors_file_is_refused(sentiment_bundle, tmp_path):
    source = write_rows(tmp_path / "in.jsonl", 5)
    with pytest.raises(JobError, match="kept for error records"):
        run_batch(sentiment_bundle, source, tmp_path / "other.jsonl.errors.jsonl", show_progress=False)
