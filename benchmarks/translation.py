"""Decoding throughput: seqops' onnxruntime graphs against a PyTorch beam search, same model, same sentences.

The PyTorch side is ``benchmarks.torch_beam_search``: a batched beam search a user would write
(``torch.topk`` over beam x vocabulary), on ``--threads`` torch threads. seqops decodes as
``seqops predict`` does: the decoder step graph ranks its own candidates, batches run one per core
on one-thread sessions; fp32, and int8 when the bundle's gate accepted it. Both sides take the same
length-sorted batches of the Multi30k test set. Rounds alternate the engines; the table shows the
best and the median sentences/s of the rounds, the best's ratio to PyTorch, and BLEU (the same BLEU
shows both searches agree).

    python -m benchmarks.translation --model models:/seqops-translation@champion --threads 2
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import datasets
import mlflow
import torch
import typer
from rich.console import Console
from rich.table import Table

from benchmarks.torch_beam_search import torch_beam_search
from flows.tracking import configure_tracking
from models.config import ModelConfig
from models.train import restore_network
from serving.bundle import resolve_bundle
from serving.predictor import Predictor
from tasks import get_task
from tasks.common.decoding import Hypotheses
from tasks.translation.task import SPLIT_FILES, read_lines

Decoder = Callable[[list[Any], int], list[dict[str, Any]]]
BASELINE = "PyTorch beam search (torch.topk)"


def torch_decoder(network: torch.nn.Module, codec: Any, batch_size: int) -> Decoder:
    """Translate items in length-sorted batches with the PyTorch beam search."""
    settings = codec.settings

    def decode(items: list[Any], beam: int) -> list[dict[str, Any]]:
        order = sorted(range(len(items)), key=lambda index: codec.item_length(items[index]))
        records: list[dict[str, Any]] = [{} for _ in items]
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            feeds = codec.encode([items[index] for index in batch])
            lengths = torch.from_numpy(feeds["lengths"])
            tokens, scores = torch_beam_search(
                network,
                torch.from_numpy(feeds["input_ids"]),
                lengths,
                codec.bos,
                codec.eos,
                beam,
                settings["length_penalty"],
                (lengths * settings["max_output_ratio"] + 10).long(),
            )
            outputs = {"hypotheses": Hypotheses(tokens, scores.numpy()), "truncated": feeds["truncated"]}
            for index, record in zip(batch, codec.decode(outputs), strict=True):
                records[index] = record
        return records

    return decode


def test_items(data_dir: Path, codec: Any, task: Any) -> tuple[list[Any], list[str]]:
    """The parsed Multi30k test sentences and their reference translations."""
    languages = (codec.settings["source_language"], codec.settings["target_language"])
    folder = data_dir / "multi30k"
    test = datasets.Dataset.from_dict(
        {
            side: read_lines(folder, SPLIT_FILES["test"], language)
            for side, language in zip(("source", "target"), languages, strict=True)
        }
    )
    rows, references = task.references(test, codec)
    return [codec.parse(row) for row in rows], references


def main(
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow URI of a translation model.")] = (
        "models:/seqops-translation@champion"
    ),
    threads: Annotated[int, typer.Option(help="Threads for both engines.")] = 2,
    beams: Annotated[list[int] | None, typer.Option("--beam", help="Beam widths to measure.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sentences per batch.")] = 64,
    rounds: Annotated[int, typer.Option(min=1, help="Alternating rounds per beam width.")] = 3,
    data_dir: Annotated[Path, typer.Option(help="Folder holding multi30k/.")] = Path("../shared/data"),
) -> None:
    """Measure PyTorch and onnxruntime decoding of the Multi30k test set."""
    configure_tracking()
    datasets.disable_progress_bars()
    bundle = resolve_bundle(model)
    metadata = json.loads((bundle / "bundle.json").read_text())
    task = get_task("translation")
    predictors = {"seqops, onnxruntime fp32": Predictor(bundle, threads=threads, batch_size=batch_size)}
    if metadata.get("int8", {}).get("accepted"):
        predictors["seqops, onnxruntime int8"] = Predictor(bundle, threads, batch_size, quantize="int8")
    codec = predictors["seqops, onnxruntime fp32"].codec
    weights = mlflow.artifacts.download_artifacts(
        run_id=metadata["run_id"], artifact_path="network/network.pt"
    )
    model_config = ModelConfig(**metadata["model_config"])
    network = restore_network(task.family, codec.network_shape(), model_config, Path(weights)).eval()
    torch.set_num_threads(threads)
    items, references = test_items(data_dir, codec, task)
    engines: dict[str, Decoder] = {BASELINE: torch_decoder(network, codec, batch_size)}
    for name, predictor in predictors.items():
        engines[name] = lambda items, beam, p=predictor: p.predict_items(items, beam_width=beam)
    table = Table(
        "engine",
        "beam",
        "sentences/s (best)",
        "median",
        "vs PyTorch",
        "BLEU",
        "chrF",
        title=f"Multi30k test ({len(items)} sentences), {metadata['cell']}, {threads} threads, "
        f"batches of {batch_size}, {rounds} alternating rounds",
    )
    for beam in beams or [1, 5]:
        for decode in engines.values():
            decode(items[:batch_size], beam)  # warm-up
        speeds: dict[str, list[float]] = {name: [] for name in engines}
        scores: dict[str, dict[str, float]] = {}
        for _ in range(rounds):
            for name, decode in engines.items():
                started = time.perf_counter()
                predictions = decode(items, beam)
                speeds[name].append(len(items) / (time.perf_counter() - started))
                scores[name] = task.metrics(predictions, references)
        baseline = max(speeds[BASELINE])
        for name, measured in speeds.items():
            table.add_row(
                name,
                str(beam),
                f"{max(measured):,.1f}",
                f"{statistics.median(measured):,.1f}",
                f"{max(measured) / baseline:.2f}x",
                f"{scores[name]['bleu']:.2f}",
                f"{scores[name]['chrf']:.2f}",
            )
    Console(width=140).print(table)


if __name__ == "__main__":
    typer.run(main)
