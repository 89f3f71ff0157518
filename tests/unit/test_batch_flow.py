"""The Prefect batch flow keeps the batch job's rules: bad rows are error records, a bad invocation fails
the run at once with one line in its log and no traceback, and a retry never predicts a row twice."""

import json

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
from prefect.logging.handlers import APILogHandler

from flows.batch import batch_predict


def run_logs(flow_run_id) -> list[str]:
    APILogHandler().flush()  # logs travel to the server in the background: wait until they are there
    with get_client(sync_client=True) as client:
        logs = client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
    return [log.message for log in logs]


def test_a_run_predicts_good_rows_and_records_bad_ones(prefect_harness, sentiment_bundle, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a moving film"}) + '\n{"text": "\\ud800"}\n{"text": 4}\n')
    report = batch_predict(
        input_path=str(source),
        output_path=str(tmp_path / "out.jsonl"),
        model=str(sentiment_bundle),
        track=False,
    )
    assert (report["predicted"], report["errors"]) == (1, 2)
    reasons = [json.loads(line)["error"] for line in (tmp_path / "out.jsonl.errors.jsonl").open()]
    assert "lone surrogate" in reasons[0] and "must be a string" in reasons[1]


def test_a_bad_invocation_fails_at_once_in_one_line_without_traceback(
    prefect_harness, sentiment_bundle, tmp_path
):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"text": "a moving film"}) + "\n")
    state = batch_predict(
        input_path=str(source),
        output_path=str(source),
        model=str(sentiment_bundle),
        track=False,
        return_state=True,
    )
    assert state.is_failed() and "is the input file" in state.message
    logs = run_logs(state.state_details.flow_run_id)
    assert any("is the input file" in message for message in logs)
    assert not any("Traceback" in message for message in logs)
    assert sum("Retry" in message or "retry" in message for message in logs) == 0
    assert source.read_text() == json.dumps({"text": "a moving film"}) + "\n"
