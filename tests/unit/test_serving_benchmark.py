"""The serving benchmark's stage table: each seqops job's own report, beside the process's wall time."""

import json

from rich.console import Console

from benchmarks.serving import job_stages, stage_table


def test_the_stage_table_adds_process_start_up_and_marks_stages_a_variant_lacks(tmp_path):
    report = tmp_path / "b.report.json"
    report.write_text(
        json.dumps({"seconds": 9.5, "stages": {"encode": 4.0, "wait": 0.5, "onnxruntime": 5.0}})
    )
    here = job_stages(report, seconds=10.0)
    assert here["start-up (process, imports)"] == 0.5 and here["wall"] == 10.0
    on_workers = {"encode": 3.0, "onnxruntime": 6.0, "wall": 12.0}
    console = Console(width=200, record=True)
    console.print(stage_table({"(b) fp32": here, "(d) Dask": on_workers}))
    lines = console.export_text().splitlines()
    assert any("encode" in line and "4.00 s (40%)" in line and "3.00 s (25%)" in line for line in lines)
    assert any("wait" in line and "0.50 s (5%)" in line and "–" in line for line in lines)
