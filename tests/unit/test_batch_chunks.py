"""Deterministic chunking of inputs, and input profiles that merge across chunks."""

import csv

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import run_batch
from serving.chunks import iter_chunks
from serving.profile import InputProfile, compare_profiles
from serving.records import chunk_rows
from tasks import InvalidRow


def rows_of(path, chunk_size, **options):
    chunks = list(iter_chunks(path, chunk_size, **options))
    return chunks, [row for chunk in chunks for row in chunk_rows(chunk)]


def test_csv_records_spanning_lines_stay_whole_across_chunks(tmp_path):
    path = tmp_path / "in.csv"
    with path.open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerows([["id", "text"], [1, "one"], [2, "two\nlines"], [3, "three"], [4], [5, "five"]])
    chunks, rows = rows_of(path, 2)
    assert [c.index for c in chunks] == [0, 1, 2] and [c.first_row for c in chunks] == [1, 3, 5]
    assert [(n, r["text"]) for n, r in rows if not isinstance(r, InvalidRow)] == [
        (1, "one"),
        (2, "two\nlines"),
        (3, "three"),
        (5, "five"),
    ]
    assert isinstance(dict(rows)[4], InvalidRow)


def test_jsonl_blank_lines_keep_their_numbers_and_skipped_chunks_are_not_read(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "a"}\n\n{"text": "b"}\n{"text": "c"}\n\n{"text": "d"}\n')
    _, rows = rows_of(path, 2)
    assert [n for n, _ in rows] == [1, 3, 4, 6]
    assert [c.index for c in iter_chunks(path, 2, skip=frozenset({0, 2}))] == [1]


def test_parquet_chunks_number_rows_continuously(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(10)]}), path, row_group_size=4)
    chunks, rows = rows_of(path, 3)
    assert [n for n, _ in rows] == list(range(1, 11))
    assert [r["text"] for _, r in rows] == [f"t{i}" for i in range(10)]
    assert [c.payload.num_rows for c in chunks] == [3, 3, 3, 1]  # row groups of 4 do not cut chunks


def test_profiles_merge_exactly_and_summarise():
    ids = np.array([[5, 1, 7, 0], [1, 1, 0, 0], [9, 9, 9, 9]])
    whole = InputProfile.of_feeds({"input_ids": ids, "lengths": np.array([3, 2, 4])}, unknown_id=1)
    first = InputProfile.of_feeds({"input_ids": ids[:1, :3], "lengths": np.array([3])}, unknown_id=1)
    rest = InputProfile.of_feeds({"input_ids": ids[1:], "lengths": np.array([2, 4])}, unknown_id=1)
    assert first.merge(rest) == whole
    summary = whole.summary()
    assert summary["unknown_rate"] == pytest.approx(3 / 9)
    assert (summary["length_p50"], summary["length_max"], summary["length_mean"]) == (3, 4, 3)
    values = np.array([[[1.0, 10.0], [3.0, 30.0], [99.0, 99.0]]])
    steps = InputProfile.of_feeds({"inputs": values, "lengths": np.array([2])}).summary()
    assert (steps["mean_channel_0"], steps["mean_channel_1"]) == (2.0, 20.0)  # padding left out
    drift = {row["statistic"]: row for row in compare_profiles(summary, {"length_mean": 2.0})}
    assert drift["length_mean"]["shift"] == pytest.approx(0.5) and drift["unknown_rate"]["shift"] is None


def test_report_profiles_the_served_inputs(sentiment_bundle, tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"text": "great film"}\n{"text": "zzzz qqqq film"}\n')
    report = run_batch(sentiment_bundle, path, tmp_path / "out.jsonl", show_progress=False)
    assert report.profile["count"] == 2 and report.profile["unknown_rate"] == pytest.approx(2 / 5)
    assert 0 < report.ort_share <= 1 and report.rows_per_second > 0
