"""Dask workers serve only the bundle they were sent: a private, verified folder per job, removed after."""

import hashlib
import json
import shutil
import stat
import tempfile
import uuid

import pytest

from serving.batch import run_batch
from serving.sharding import _release_job, _worker_predictor, bundle_archive
from tasks import BundleError

TEXTS = ["a great and moving film", "dull , boring plot", "brilliant", "the acting is awful"]


@pytest.fixture
def temporary_folder(tmp_path, monkeypatch):
    """A temporary folder of this test's own: another process's bundle folders never enter the counts."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return folder


def plant_reversed_bundle(original, folder):
    """A bundle that names the classes the other way round: served, it would flip every label."""
    shutil.copytree(original, folder)
    codec = json.loads((folder / "codec.json").read_text())
    (folder / "codec.json").write_text(json.dumps({**codec, "labels": codec["labels"][::-1]}))


def test_a_planted_bundle_folder_is_never_served_and_no_folder_outlives_the_job(
    sentiment_bundle, tmp_path, monkeypatch
):
    shared = tmp_path / "shared-tmp"  # the workers' temporary folder, where another user could plant
    shared.mkdir()
    monkeypatch.setenv("TMPDIR", str(shared))
    monkeypatch.setattr(tempfile, "tempdir", None)
    _, archive = bundle_archive(sentiment_bundle)
    planted = [
        shared / f"seqops-bundle-{hashlib.sha256(archive).hexdigest()[:16]}",  # the name once reused
        shared / "seqops-bundle-00000000",
    ]
    for folder in planted:
        plant_reversed_bundle(sentiment_bundle, folder)
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"text": t}) + "\n" for t in TEXTS * 50))
    run_batch(sentiment_bundle, source, tmp_path / "local.jsonl", chunk_size=50, show_progress=False)
    run_batch(
        sentiment_bundle, source, tmp_path / "dask.jsonl", chunk_size=50, show_progress=False, workers=2
    )
    assert (tmp_path / "dask.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    assert sorted(shared.glob("seqops-bundle-*")) == sorted(planted)  # untouched, and nothing else left


def test_a_worker_unpacks_into_a_private_folder_and_removes_it_when_the_job_ends(
    sentiment_bundle, temporary_folder
):
    digest, archive = bundle_archive(sentiment_bundle)
    job = uuid.uuid4().hex
    predictor = _worker_predictor(job, digest, archive, 1, None)
    folder = predictor.directory
    assert folder.name.startswith("seqops-bundle-") and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert _worker_predictor(job, digest, archive, 1, None) is predictor  # once per job and worker
    _release_job(job)
    assert not folder.exists()
    with pytest.raises(RuntimeError, match="has ended"):  # a chunk arriving late recreates nothing
        _worker_predictor(job, digest, archive, 1, None)


def test_a_bundle_that_differs_from_its_digest_is_refused_and_leaves_nothing(
    sentiment_bundle, tmp_path, temporary_folder
):
    tampered = tmp_path / "tampered"
    plant_reversed_bundle(sentiment_bundle, tampered)
    digest, _ = bundle_archive(sentiment_bundle)
    _, archive = bundle_archive(tampered)
    with pytest.raises(BundleError, match="differs from the one sent"):
        _worker_predictor(uuid.uuid4().hex, digest, archive, 1, None)
    assert list(temporary_folder.iterdir()) == []


def test_tasks_starting_together_on_one_worker_unpack_the_bundle_once(sentiment_bundle, temporary_folder):
    from concurrent.futures import ThreadPoolExecutor

    digest, archive = bundle_archive(sentiment_bundle)
    job = uuid.uuid4().hex
    with ThreadPoolExecutor(4) as pool:
        predictors = list(pool.map(lambda _: _worker_predictor(job, digest, archive, 1, None), range(4)))
    assert len({id(p) for p in predictors}) == 1
    assert len(list(temporary_folder.glob("seqops-bundle-*"))) == 1
    _release_job(job)
    assert list(temporary_folder.iterdir()) == []
