"""A whole input file that cannot be read is one clear line (exit status 2), never a traceback."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.batch import run_batch
from serving.errors import JobError


def test_a_csv_header_that_is_not_utf8_is_refused_before_any_work(sentiment_bundle, tmp_path):
    source = tmp_path / "in.csv"
    source.write_bytes("text\ngreat film\n".encode("utf-16"))
    with pytest.raises(JobError, match="header of .* is not UTF-8"):
        run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", show_progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv"]


def test_a_damaged_parquet_row_group_stops_the_job_naming_where(sentiment_bundle, tmp_path):
    source = tmp_path / "in.parquet"
    texts = [f"a {'great' if i % 2 else 'dull'} film number {i} " * 3 for i in range(300)]
    pq.write_table(pa.table({"text": texts}), source, row_group_size=100, compression="snappy")
    column = pq.ParquetFile(source).metadata.row_group(2).column(0)
    data = bytearray(source.read_bytes())
    start = column.data_page_offset + 20
    data[start : start + 200] = bytes(200)  # zeroes in the middle of the last row group's pages
    source.write_bytes(bytes(data))
    with pytest.raises(JobError, match="cannot be read after row 200"):
        run_batch(sentiment_bundle, source, tmp_path / "out.jsonl", chunk_size=100, show_progress=False)


def test_the_series_reader_needs_a_csv_input(tmp_path, forecasting_model):
    _, _, bundle = forecasting_model
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"history": [[0.1, 0.2]] * 48}) + "\n")
    with pytest.raises(JobError, match="--reader series reads csv files"):
        run_batch(bundle, source, tmp_path / "out.jsonl", show_progress=False, reader="series")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
