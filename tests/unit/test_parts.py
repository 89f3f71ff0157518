"""The batch job's part store (``serving.parts``): finished chunks merged in input order into one file."""

import os
import uuid

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.parts import ChunkResult, PartStore, serialise

SIGNATURE = {"input": "in.jsonl", "chunk_size": 2}


def record(row: int, **prediction) -> dict:
    return {"row": row, "input": {"text": f"sentence {row}"}, **prediction}


def merged(tmp_path, chunks: list[list[dict]]) -> pa.Table:
    output = tmp_path / "out.parquet"
    store = PartStore(output, SIGNATURE)
    for index, records in enumerate(chunks):
        store.save(ChunkResult(index, serialise(records, "parquet"), b"", {"rows": len(records)}))
    assert store.merge(len(chunks), tmp_path / "out.parquet.errors.jsonl") == 0
    return pq.read_table(output)


def test_parquet_chunks_with_other_fields_merge_into_one_schema_with_nulls_where_a_field_is_missing(
    tmp_path,
):
    # A task may predict a field for some rows only (a chunk where it is always null has no type for
    # it), or give whole numbers in one chunk and fractions in another.
    table = merged(
        tmp_path,
        [
            [record(1, label="pos", score=1), record(2, label="neg", score=0)],
            [record(3, label="pos", score=0.5, note=None)],
            [record(4, label="neg", score=0.25, note="long input cut")],
        ],
    )
    assert table.column_names == ["row", "input", "label", "score", "note"]
    assert [table.schema.field(name).type for name in ("row", "score", "note")] == [
        pa.int64(),
        pa.float64(),
        pa.string(),
    ]
    assert table.column("score").to_pylist() == [1.0, 0.0, 0.5, 0.25]
    assert table.column("row").to_pylist() == [1, 2, 3, 4]
    assert table.column("note").to_pylist() == [None, None, None, "long input cut"]


def test_a_parquet_job_without_predictions_writes_an_empty_file_with_its_row_column(tmp_path):
    table = merged(tmp_path, [[], []])  # every row an error record
    assert table.num_rows == 0 and table.schema == pa.schema([("row", pa.int64())])


def jsonl_store(tmp_path, chunks: list[list[dict]]) -> PartStore:
    store = PartStore(tmp_path / "out.jsonl", SIGNATURE)
    for index, records in enumerate(chunks):
        store.save(ChunkResult(index, serialise(records, "jsonl"), b"", {"rows": len(records)}))
    return store


def test_jsonl_lines_put_the_row_first_and_the_input_fields_beside_the_prediction(tmp_path):
    clash = {"row": 2, "input": {"text": "dull", "label": "gold"}, "label": "neg"}
    store = jsonl_store(tmp_path, [[record(1, label="pos")], [clash]])
    store.merge(2, tmp_path / "out.jsonl.errors.jsonl")
    assert (tmp_path / "out.jsonl").read_text().splitlines() == [
        '{"row":1,"text":"sentence 1","label":"pos"}',
        '{"row":2,"text":"dull","input_label":"gold","label":"neg"}',  # the input's own label kept apart
    ]
    assert (tmp_path / "out.jsonl").stat().st_mode & 0o777 == 0o666 & ~current_umask()


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_merging_before_every_chunk_is_finished_names_the_missing_chunks(tmp_path):
    store = jsonl_store(tmp_path, [[record(1)], [], [record(5)]])
    with pytest.raises(RuntimeError, match=r"^cannot merge: chunks \[3, 4, 5, 6, 7\] of 9 are not finished$"):
        store.merge(9, tmp_path / "out.jsonl.errors.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_a_link_planted_where_the_merge_writes_is_never_followed(tmp_path, monkeypatch):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    store = jsonl_store(tmp_path, [[record(1)]])
    monkeypatch.setattr(uuid, "uuid4", lambda: uuid.UUID(int=0))  # someone guessed the fresh name
    (tmp_path / f"out.jsonl.{'0' * 12}.partial").symlink_to(victim)
    with pytest.raises(FileExistsError):
        store.merge(1, tmp_path / "out.jsonl.errors.jsonl")
    assert victim.read_text() == "precious" and not (tmp_path / "out.jsonl").exists()


def test_removing_the_parts_twice_is_harmless(tmp_path):
    store = jsonl_store(tmp_path, [[record(1)]])
    store.remove()
    store.remove()  # a retried job finds them gone
    assert sorted(path.name for path in tmp_path.iterdir()) == []
