"""Decoding throughput: onnxruntime (what seqops serves) against PyTorch eager, same model, same search.

Both sides run the same beam search (``tasks.common.decoding``) over the same encoded Multi30k test
sentences; only the engine behind ``run(graph, feeds)`` differs. Prints one table row per engine and
beam width: sentences/s, the ratio to PyTorch, and BLEU (identical BLEU shows the decodes agree).

    python benchmarks/translation.py --model models:/seqops-translation@champion --threads 2
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import datasets
import mlflow
import torch
import typer
from rich.console import Console
from rich.table import Table

from flows.tracking import configure_tracking
from models.config import ModelConfig
from models.families.seq2seq.export import torch_runner
from models.train import restore_network
from serving.bundle import resolve_bundle
from serving.predictor import Predictor
from tasks import get_task
from tasks.translation.task import SPLIT_FILES, read_lines


def decode_all(codec, run, items, beam_width: int, batch_size: int) -> tuple[list[dict], float]:
    """Translate every item in batches; the predictions and the wall time."""
    started = time.perf_counter()
    predictions = []
    for start in range(0, len(items), batch_size):
        feeds = codec.encode(items[start : start + batch_size])
        predictions += codec.decode(codec.infer(run, feeds, beam_width=beam_width))
    return predictions, time.perf_counter() - started


def main(
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow URI of a translation model.")] = (
        "models:/seqops-translation@champion"
    ),
    threads: Annotated[int, typer.Option(help="Threads for both engines.")] = 2,
    beams: Annotated[list[int] | None, typer.Option("--beam", help="Beam widths to measure.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 64,
    data_dir: Annotated[Path, typer.Option(help="Folder holding multi30k/.")] = Path("../shared/data"),
) -> None:
    """Measure onnxruntime and PyTorch decoding of the Multi30k test set."""
    configure_tracking()
    datasets.disable_progress_bars()
    bundle = resolve_bundle(model)
    metadata = json.loads((bundle / "bundle.json").read_text())
    predictor = Predictor(bundle, threads=threads)
    codec, task = predictor.codec, get_task("translation")
    weights = mlflow.artifacts.download_artifacts(
        run_id=metadata["run_id"], artifact_path="network/network.pt"
    )
    shape, model_config = codec.network_shape(), ModelConfig(**metadata["model_config"])
    network = restore_network(task.family, shape, model_config, Path(weights))
    torch.set_num_threads(threads)
    folder, languages = (
        data_dir / "multi30k",
        (codec.settings["source_language"], codec.settings["target_language"]),
    )
    test = datasets.Dataset.from_dict(
        {
            side: read_lines(folder, SPLIT_FILES["test"], lang)
            for side, lang in zip(("source", "target"), languages, strict=True)
        }
    )
    rows, references = task.references(test, codec)
    items = [codec.parse(row) for row in rows]
    engines = {"PyTorch eager": torch_runner(network), "onnxruntime (seqops)": predictor.run}
    table = Table(
        "engine",
        "beam",
        "sentences/s",
        "vs PyTorch",
        "BLEU",
        "chrF",
        title=f"Multi30k test ({len(items)} sentences), {metadata['cell']}, {threads} threads, "
        f"batch {batch_size}",
    )
    for beam in beams or [1, 5]:
        baseline = None
        for name, run in engines.items():
            predictions, seconds = decode_all(codec, run, items, beam, batch_size)
            scores = task.metrics(predictions, references)
            speed = len(items) / seconds
            baseline = baseline or speed
            table.add_row(
                name,
                str(beam),
                f"{speed:,.1f}",
                f"{speed / baseline:.2f}x",
                f"{scores['bleu']:.2f}",
                f"{scores['chrf']:.2f}",
            )
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
