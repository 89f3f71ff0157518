"""Generation throughput: onnxruntime (what seqops serves) against PyTorch eager, same model, same sampler.

Both sides sample by the same rules over the same prompts with the same seeds: PyTorch through the
step modules, which end in the torch sampler, onnxruntime through the exported graphs, which hold the
same sampler (``models.families.language_model.sampler``), so both must produce the same text. PyTorch
runs all prompts as one batch on ``--threads`` threads, as a script would; seqops runs them as
`seqops predict` does, one batch per core, each on a one-thread onnxruntime session.
Rounds alternate the engines; the table shows the best and the median of the rounds: generated
characters per second and the ratio to PyTorch.

    python -m benchmarks.generation --model models:/seqops-text_generation@champion --threads 2
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import mlflow
import torch
import typer
from rich.console import Console
from rich.table import Table

from flows.tracking import configure_tracking
from models.config import ModelConfig
from models.family import get_family
from models.train import restore_network
from serving.bundle import resolve_bundle
from serving.predictor import Predictor
from tasks import get_task
from tasks.common.base import GraphRunner

PROMPTS = [
    "ROMEO:",
    "JULIET:\n",
    "First Citizen:\nWe are",
    "KING HENRY:\nNow",
    "To be",
    "\n",
    "O, ",
    "My lord,",
]


def torch_texts(codec: Any, run: GraphRunner, rows: list[dict]) -> list[str]:
    """Continue every prompt in one batch, as a PyTorch script would (torch spreads it over its threads)."""
    feeds = codec.encode([codec.parse(row) for row in rows])
    return [record["text"] for record in codec.decode(codec.infer(run, feeds))]


def timed(generate: Callable[[], list[str]]) -> tuple[list[str], float]:
    """The texts and the wall time of one generation round."""
    started = time.perf_counter()
    texts = generate()
    return texts, time.perf_counter() - started


def main(
    model: Annotated[str, typer.Option(help="Bundle folder or MLflow URI of a text-generation model.")] = (
        "models:/seqops-text_generation@champion"
    ),
    threads: Annotated[
        int, typer.Option(help="Cores for both engines (torch threads; onnxruntime lanes).")
    ] = 2,
    rows: Annotated[int, typer.Option(help="Prompts continued per round.")] = 64,
    new_tokens: Annotated[int, typer.Option(help="Tokens generated per prompt.")] = 200,
    rounds: Annotated[int, typer.Option(help="Alternating rounds per engine.")] = 3,
) -> None:
    """Measure onnxruntime and PyTorch generation with the same sampler and seeds."""
    configure_tracking()
    bundle = resolve_bundle(model)
    metadata = json.loads((bundle / "bundle.json").read_text())
    # What `seqops predict` does: prompts cut into one batch per core, each on a one-thread session.
    predictor = Predictor(bundle, threads=threads, batch_size=-(-rows // threads))
    codec, task = predictor.codec, get_task("text_generation")
    weights = mlflow.artifacts.download_artifacts(
        run_id=metadata["run_id"], artifact_path="network/network.pt"
    )
    network = restore_network(
        task.family, codec.network_shape(), ModelConfig(**metadata["model_config"]), Path(weights)
    )
    torch.set_num_threads(threads)
    prompts = [
        {"prompt": PROMPTS[i % len(PROMPTS)], "seed": i, "max_new_tokens": new_tokens, "temperature": 0.8}
        for i in range(rows)
    ]
    torch_run = get_family(task.family).torch_runner(network)
    engines = {
        "PyTorch eager": lambda: torch_texts(codec, torch_run, prompts),
        "onnxruntime (seqops)": lambda: [record["text"] for record in predictor.predict_rows(prompts)],
    }
    for generate in engines.values():  # warm-up: first calls allocate and load lazily
        generate()
    speeds: dict[str, list[float]] = {name: [] for name in engines}
    outputs: dict[str, list[str]] = {}
    for _ in range(rounds):
        for name, generate in engines.items():
            outputs[name], seconds = timed(generate)
            speeds[name].append(sum(len(text) for text in outputs[name]) / seconds)
    same = outputs["PyTorch eager"] == outputs["onnxruntime (seqops)"]
    table = Table(
        "engine",
        "best chars/s",
        "median chars/s",
        "vs PyTorch (best)",
        "same text",
        title=f"{rows} prompts x {new_tokens} tokens, {metadata['cell']}, {threads} cores, "
        f"best of {rounds} alternating rounds",
    )
    baseline = max(speeds["PyTorch eager"])
    for name, measured in speeds.items():
        table.add_row(
            name,
            f"{max(measured):,.0f}",
            f"{statistics.median(measured):,.0f}",
            f"{max(measured) / baseline:.2f}x",
            "yes" if same else "NO",
        )
    Console().print(table)


if __name__ == "__main__":
    typer.run(main)
