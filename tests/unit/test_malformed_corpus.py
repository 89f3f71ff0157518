"""Every row of the malformed input corpora, through the real ``seqops predict`` command line.

A bad row becomes an error record with its row number and reason, every other row is still predicted
in input order, no row is lost or duplicated, and no traceback ever reaches the user.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import (
    NOT_A_ROW,
    PREDICTED,
    Case,
    action_recognition,
    forecasting,
    sentiment,
    sentiment_csv,
    text_generation,
    translation,
)
from task_models import bundle_of

from serving.chunks import MAX_CSV_FIELD

ROOT = Path(__file__).resolve().parents[2]
CORPORA = {
    "sentiment": sentiment.CASES,
    "translation": translation.CASES,
    "forecasting": forecasting.CASES,
    "action_recognition": action_recognition.CASES,
    "text_generation": text_generation.CASES,
}


def predict(bundle: Path, source: Path, output: Path) -> tuple[list[dict], list[dict]]:
    """Run the command line; returns its prediction and error records."""
    command = [sys.executable, "-m", "flows.cli", "predict", "--model", str(bundle), "--chunk-size", "16"]
    result = subprocess.run(
        [*command, "-i", str(source), "-o", str(output)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stderr[-3000:]
    assert result.returncode == 0, result.stdout[-1000:] + result.stderr[-2000:]
    errors = output.with_name(output.name + ".errors.jsonl")
    return [
        [json.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []
        for path in (output, errors)
    ]


def shown(record: dict | None) -> str:
    return "nothing" if record is None else json.dumps(record)[:300]


def check_outcomes(cases: list[Case], predicted: list[dict], errors: list[dict]) -> None:
    """Case ``i`` is row ``i + 1``: predicted, an error with its reason, or (a blank line) neither."""
    predicted_rows, error_rows = [r["row"] for r in predicted], [e["row"] for e in errors]
    for name, rows in (("predictions", predicted_rows), ("errors", error_rows)):
        assert rows == sorted(set(rows)), f"{name} are out of input order or duplicated: {rows}"
    expected = {number for number, case in enumerate(cases, 1) if case.reason != NOT_A_ROW}
    assert not set(predicted_rows) & set(error_rows), "rows both predicted and errors"
    assert set(predicted_rows) | set(error_rows) == expected, "rows lost or invented"
    predictions_by_row, errors_by_row = {r["row"]: r for r in predicted}, {e["row"]: e for e in errors}
    wrong = []
    for number, case in enumerate(cases, 1):
        prediction, error = predictions_by_row.get(number), errors_by_row.get(number)
        if case.reason is PREDICTED and prediction is None:
            wrong.append(f"{case.name} (row {number}): expected a prediction, got {shown(error)}")
        elif case.reason not in (PREDICTED, NOT_A_ROW) and case.reason not in (error or {}).get("error", ""):
            got = shown(error or prediction)
            wrong.append(f"{case.name} (row {number}): expected an error with {case.reason!r}, got {got}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("task", sorted(CORPORA))
def test_every_malformed_row_is_an_error_with_its_reason_and_every_other_row_is_predicted(
    task, request, tmp_path
):
    cases = CORPORA[task]
    assert len(cases) >= 50 and len({c.name for c in cases}) == len(cases)
    assert not [c.name for c in cases if b"\n" in c.line], "a JSONL case must be one line"
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(case.line + b"\n" for case in cases))
    check_outcomes(cases, *predict(bundle_of(request, task), source, tmp_path / "out.jsonl"))


def test_every_malformed_csv_record_is_an_error_with_its_reason(sentiment_bundle, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes(
        b"\n".join([sentiment_csv.HEADER, *(case.line for case in sentiment_csv.CASES)]) + b"\n"
    )
    check_outcomes(sentiment_csv.CASES, *predict(sentiment_bundle, source, tmp_path / "out.jsonl"))


def test_a_quote_never_closed_costs_one_row_and_reading_resumes_past_the_field_limit(
    sentiment_bundle, tmp_path
):
    filler = b"filler,a line inside the open quote\n"  # no quote: it cannot close the open one
    lines = MAX_CSV_FIELD // len(filler) + 50  # just past the limit: the last lines are rows again
    source = tmp_path / "in.csv"
    source.write_bytes(
        b'id,text\n1,a great film\n2,"never closed\n' + filler * lines + b"tail,a dull plot\nlast,\n"
    )
    predicted, errors = predict(sentiment_bundle, source, tmp_path / "out.jsonl")
    rows = sorted(r["row"] for r in predicted + errors)
    assert rows == list(range(1, len(rows) + 1)), "rows lost or duplicated"
    assert [e["row"] for e in errors] == [2, rows[-1]]
    assert "quote never closed" in errors[0]["error"] and "field limit" in errors[0]["error"]
    assert "'text' is empty" in errors[1]["error"] and errors[1]["id"] == "last"
    ids = [r["id"] for r in predicted]
    assert ids[0] == "1" and ids[-1] == "tail" and set(ids[1:-1]) == {"filler"}
    assert 0 < len(ids) - 2 <= 50  # the filler lines read as rows are those past the limit
