"""Whatever bytes an input file holds, a batch job ends normally and accounts for its rows.

Every non-blank JSONL line gives exactly one prediction or one error record; a CSV file never gives
more rows than it has lines after its header, and a header that cannot be read is refused up front.
"""

import io
import json
import tempfile
from pathlib import Path

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_strategies import json_objects

from serving.batch import run_batch
from serving.errors import JobError
from serving.records import json_record
from tasks import InvalidRow

JOBS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# Pieces that mean something to a JSON or CSV reader, mixed with arbitrary bytes.
TOKENS = [b"{", b"}", b"[", b"]", b'"', b",", b":", b"\n", b"\r", b"\r\n", b" ", b"\x00", b"\xef\xbb\xbf"]
TOKENS += [b'"text"', b"text", b'"a great film"', b"NaN", b"-Infinity", b"1e400", b"9" * 30, b"\\ud800"]
TOKENS += [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"id,text\n", b"1,a great film\n", b'{"text": "fine"}\n']
files = st.lists(st.sampled_from(TOKENS) | st.binary(max_size=12), max_size=40).map(b"".join)


def predict_file(bundle: Path, data: bytes, suffix: str) -> tuple[list[dict], list[dict]]:
    """Run a job on ``data`` written as an input file; returns its prediction and error records."""
    with tempfile.TemporaryDirectory() as folder:
        source, output = Path(folder) / f"in{suffix}", Path(folder) / "out.jsonl"
        source.write_bytes(data)
        report = run_batch(bundle, source, output, chunk_size=4, show_progress=False)
        errors = output.with_name(output.name + ".errors.jsonl")
        records = [
            [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
            for path in (output, errors)
        ]
    assert (report.predicted, report.errors) == (len(records[0]), len(records[1]))
    return records[0], records[1]


def row_numbers(predicted: list[dict], errors: list[dict]) -> list[int]:
    rows = sorted(record["row"] for record in predicted + errors)
    assert len(rows) == len(set(rows)), f"a row was written twice: {rows}"
    return rows


@given(line=st.binary(max_size=64) | files)
@settings(max_examples=300, deadline=None)
def test_any_line_is_a_record_or_an_invalid_row(line):
    assert isinstance(json_record(line), dict | InvalidRow)


@given(data=files)
@JOBS
def test_any_bytes_as_jsonl_give_one_record_per_non_blank_line(sentiment_bundle, data):
    rows = row_numbers(*predict_file(sentiment_bundle, data, ".jsonl"))
    lines = data.split(b"\n")
    assert rows == [number for number, line in enumerate(lines, 1) if line.strip()]


@given(data=files)
@JOBS
def test_any_bytes_as_csv_never_give_more_rows_than_lines(sentiment_bundle, data):
    try:
        rows = row_numbers(*predict_file(sentiment_bundle, data, ".csv"))
    except JobError as refusal:  # the header itself could not be read: refused before any work
        assert "not a readable csv file" in str(refusal) or "is not UTF-8 text" in str(refusal)
        return
    lines = io.StringIO(data.decode("utf-8-sig", errors="replace"), newline="").readlines()
    assert all(1 <= row < len(lines) for row in rows), f"{len(lines)} lines gave rows {rows}"


@given(rows=st.lists(json_objects, min_size=1, max_size=12))
@JOBS
def test_any_json_object_as_a_line_is_one_prediction_or_one_error(sentiment_bundle, rows):
    data = "".join(json.dumps(row, ensure_ascii=True) + "\n" for row in rows).encode()
    assert row_numbers(*predict_file(sentiment_bundle, data, ".jsonl")) == list(range(1, len(rows) + 1))
