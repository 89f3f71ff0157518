"""Batch inference end to end: what a user would write in PyTorch against ``seqops predict``.

On a JSONL file of SST-2 sentences (train, dev and test repeated and shuffled, with their gold
labels), with the same trained sentiment model and the same number of threads, each variant runs
in its own process, reading the file and writing its predictions:

(a) PyTorch eager: a DataLoader of 256 rows, each batch tokenised and padded to its longest row;
(b) ``seqops predict`` fp32; (c) ``seqops predict --quantize int8``; (d) the same on 2 Dask workers.

Prints rows/s, the ratio to (a), peak RSS of the whole process tree (sampled) and accuracy against
the gold labels; then where the wall time of each seqops variant's best run went, stage by stage
(from the job's ``--report``). ``--memory`` also runs (b) on 100,000 and 1,000,000 rows and compares
peak RSS.

    python -m benchmarks.serving run --model models:/seqops-sentiment@champion --threads 2

(Run as a module: as a script, this file's folder would come first on the path and its name would
hide the ``serving`` package.)
"""

from __future__ import annotations

import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Annotated

import psutil
import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
console = Console(width=160)  # the tables stay whole in a log
SEQOPS = [sys.executable, "-m", "flows.cli"]
PYTORCH = [sys.executable, "-m", "benchmarks.serving", "pytorch"]


def write_sentences(data_dir: Path, rows: int, path: Path, seed: int = 0) -> Path:
    """``rows`` SST-2 sentences with gold labels, drawn at random from every split, as JSONL."""
    sentences = []
    for split in ("train", "dev", "test"):
        for line in (data_dir / "sst2" / f"stsa.binary.{split}").read_text().splitlines():
            label, text = line.split(" ", 1)
            sentences.append((int(label), text.strip()))
    rng = random.Random(seed)
    with path.open("w") as stream:
        for index in range(rows):
            label, text = rng.choice(sentences)
            stream.write(json.dumps({"id": index, "text": text, "gold": label}) + "\n")
    return path


def measure(command: list[str]) -> tuple[float, float]:
    """Run a command; its wall time and the peak RSS (MB) of its process tree, sampled every 50 ms."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    root, peak = psutil.Process(process.pid), 0
    while process.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    if process.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{process.stderr.read().decode()[-2000:]}")
    return time.perf_counter() - started, peak / 2**20


def accuracy(predictions: Path, labels: list[str]) -> float:
    """Share of predicted rows whose label matches the gold one."""
    hits = total = 0
    with predictions.open() as stream:
        for line in stream:
            record = json.loads(line)
            hits += record["label"] == labels[record["gold"]]
            total += 1
    return hits / total


def job_stages(report: Path, seconds: float) -> dict[str, float]:
    """A job's seconds by stage (its ``--report``), with process start-up and the whole run's wall time."""
    job = json.loads(report.read_text())
    return {**job["stages"], "start-up (process, imports)": seconds - job["seconds"], "wall": seconds}


def stage_table(stages: dict[str, dict[str, float]]) -> Table:
    """Seconds and share of the wall time per stage, one column per variant."""
    title = "Where the time goes (best run; read, parse and encode overlap the rest)"
    table = Table("stage", *stages, title=title)
    for stage in dict.fromkeys(name for run in stages.values() for name in run):
        cells = [
            f"{run[stage]:.2f} s ({run[stage] / run['wall']:.0%})" if stage in run else "–"
            for run in stages.values()
        ]
        table.add_row(stage, *cells)
    return table


@app.command()
def pytorch(
    bundle: Path, weights: Path, input: Path, output: Path, threads: int = 2, batch_size: int = 256
) -> None:
    """Baseline (a): plain PyTorch eager inference, as a user would write it."""
    import torch
    from torch.nn.utils.rnn import pad_sequence
    from torch.utils.data import DataLoader

    from models.config import ModelConfig
    from models.train import restore_network
    from serving.predictor import Predictor
    from tasks import get_task

    torch.set_num_threads(threads)
    metadata = json.loads((bundle / "bundle.json").read_text())
    codec = Predictor(bundle, threads=1).codec  # the trained Hugging Face tokenizer and label names
    family = get_task(metadata["task"]).family
    network = restore_network(family, codec.network_shape(), ModelConfig(**metadata["model_config"]), weights)
    rows = [json.loads(line) for line in input.open()]

    def collate(batch: list[dict]) -> tuple[list[dict], torch.Tensor, torch.Tensor]:
        encodings = codec.tokenizer.encode_batch_fast([row["text"] for row in batch])
        ids = [torch.tensor(e.ids[: codec.max_length] or [0]) for e in encodings]
        return batch, pad_sequence(ids, batch_first=True), torch.tensor([len(i) for i in ids])

    with output.open("w") as stream, torch.inference_mode():
        for batch, ids, lengths in DataLoader(rows, batch_size=batch_size, collate_fn=collate):
            probabilities = torch.softmax(network(ids, lengths), dim=-1)
            confidence, label = probabilities.max(dim=-1)
            columns = (batch, probabilities.tolist(), confidence.tolist(), label.tolist())
            for row, p, c, k in zip(*columns, strict=True):
                record = {**row, "label": codec.labels[k], "confidence": c}
                record["probabilities"] = dict(zip(codec.labels, p, strict=True))
                stream.write(json.dumps(record) + "\n")


@app.command()
def run(
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow URI of a sentiment model.")] = (
        "models:/seqops-sentiment@champion"
    ),
    rows: Annotated[int, typer.Option(help="Sentences in the input file.")] = 200_000,
    threads: Annotated[int, typer.Option(help="Threads for every variant (Dask: one per worker).")] = 2,
    workers: Annotated[int, typer.Option(help="Dask workers for (d).")] = 2,
    repeat: Annotated[int, typer.Option(min=1, help="Runs of each variant, in turns; the best counts.")] = 3,
    memory: Annotated[bool, typer.Option(help="Also compare peak RSS on 100k and 1M rows.")] = False,
    data_dir: Annotated[Path, typer.Option(help="Folder holding sst2/.")] = Path("../shared/data"),
) -> None:
    """Measure every variant on the same file and print the table."""
    import mlflow

    from flows.tracking import configure_tracking
    from serving.bundle import resolve_bundle

    configure_tracking()
    bundle = resolve_bundle(model)
    metadata = json.loads((bundle / "bundle.json").read_text())
    labels = json.loads((bundle / "codec.json").read_text())["labels"]
    weights = mlflow.artifacts.download_artifacts(
        run_id=metadata["run_id"], artifact_path="network/network.pt"
    )
    work = Path(tempfile.mkdtemp(prefix="seqops-bench-"))
    source = write_sentences(data_dir, rows, work / "input.jsonl")
    predict = [*SEQOPS, "predict", "--model", str(bundle), "-i", str(source), "--no-progress"]
    variants = {
        "(a) PyTorch eager, DataLoader": [
            *PYTORCH,
            str(bundle),
            weights,
            str(source),
            str(work / "a.jsonl"),
            "--threads",
            str(threads),
        ],
        "(b) seqops predict fp32": [*predict, "-o", str(work / "b.jsonl"), "--threads", str(threads)],
        "(c) seqops predict int8": [
            *predict,
            "-o",
            str(work / "c.jsonl"),
            "--threads",
            str(threads),
            "--quantize",
            "int8",
        ],
        f"(d) int8, {workers} Dask workers": [
            *predict,
            "-o",
            str(work / "d.jsonl"),
            "--quantize",
            "int8",
            "--workers",
            str(workers),
        ],
    }
    table = Table(
        "variant",
        "rows/s (best)",
        "× (a)",
        "median",
        "× (a), medians",
        "runs, rows/s",
        "peak RSS MB",
        "accuracy",
        title=f"{model} ({metadata.get('cell')}), {rows:,} rows, {threads} threads, best of {repeat}",
    )
    for name, command in variants.items():
        if command[: len(SEQOPS)] == SEQOPS:
            command += ["--report", str(work / f"{name[1]}.report.json")]
    # Variants take turns, so that a slow spell of a shared machine does not fall on one variant only.
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    stages: dict[str, dict[str, float]] = {}  # of each seqops variant's best run
    for attempt in range(repeat):
        for name, command in variants.items():
            (work / f"{name[1]}.jsonl").unlink(missing_ok=True)  # a fresh job, not a finished one
            seconds, peak = measure(command)
            report = work / f"{name[1]}.report.json"
            if report.is_file() and seconds < min((rows / speed for speed, _ in runs[name]), default=1e9):
                stages[name] = job_stages(report, seconds)
            runs[name].append((rows / seconds, peak))
            console.print(f"run {attempt + 1}, {name}: {seconds:.1f} s")
    speeds = {name: [speed for speed, _ in measured] for name, measured in runs.items()}
    baseline = speeds[next(iter(variants))]
    for name, measured in runs.items():
        best, median = max(speeds[name]), statistics.median(speeds[name])
        score = accuracy(work / f"{name[1]}.jsonl", labels)
        spread = ", ".join(f"{s:,.0f}" for s in speeds[name])
        peak = max(p for _, p in measured)
        table.add_row(
            name,
            f"{best:,.0f}",
            f"{best / max(baseline):.2f}",
            f"{median:,.0f}",
            f"{median / statistics.median(baseline):.2f}",
            spread,
            f"{peak:,.0f}",
            f"{score:.4f}",
        )
    console.print(table)
    console.print(stage_table(stages))
    if memory:
        peaks = {}
        for size in (100_000, 1_000_000):
            path = write_sentences(data_dir, size, work / f"memory-{size}.jsonl")
            command = [*predict[:5], str(bundle), "-i", str(path), "-o", str(work / "memory.jsonl")]
            _, peaks[size] = measure([*command, "--no-progress", "--threads", str(threads)])
            path.unlink()
        console.print(
            f"peak RSS, seqops predict fp32: 100,000 rows {peaks[100_000]:,.0f} MB, "
            f"1,000,000 rows {peaks[1_000_000]:,.0f} MB ({peaks[1_000_000] / peaks[100_000]:.2f}×)"
        )
    shutil.rmtree(work)


if __name__ == "__main__":
    app()
