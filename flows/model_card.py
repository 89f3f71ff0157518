"""What the model registry says: a model card per version, a description per model, the champion's run.

Each registered version's card (Markdown) is its description in the registry and ``model_card.md`` in
its run; the registered model's description says what it is and how to call its champion.
"""

from __future__ import annotations

import json
from typing import Any

from flows.tables import direction_words, task_summary
from flows.tracker import tracker
from serving.redaction import mask_credentials
from tasks import PreparedData, Task


def _number(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _scores_table(task_: Task, row: dict[str, Any], baselines: list[dict[str, Any]]) -> list[str]:
    """This version's test scores beside each baseline's, one metric per row."""
    scored = [b for b in baselines if any(k.startswith("test_") for k in b)]
    metrics = [k for k in row if k.startswith("test_") and not k.endswith(("_mean", "_std", "_int8"))]
    metrics.sort(key=lambda k: (k != f"test_{task_.promotion_metric}", k))
    header = ["metric", f"this model ({row['cell']})", *(b["cell"] for b in scored)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in metrics:
        name = key.removeprefix("test_")
        marked = (
            f"**{name}** (promotion, {task_.promotion_direction})" if name == task_.promotion_metric else name
        )
        values = [_number(row[key]), *(_number(b.get(key, "")) for b in scored)]
        lines.append("| " + " | ".join([marked, *values]) + " |")
    return lines


def model_card(
    task_: Task,
    prepared: PreparedData,
    row: dict[str, Any],
    baselines: list[dict[str, Any]],
    settings: dict[str, Any],
    status: str,
) -> str:
    """A registered version's model card, in Markdown.

    Args:
        task_: The task the model serves.
        prepared: The data it was trained and tested on.
        row: The version's result row (cell, seed, scores, parity, int8, version).
        baselines: The classical baselines' result rows on the same test split.
        settings: The run's parameters (network and training settings).
        status: What the champion gate made of it, in words.

    Returns:
        The card.
    """
    name, version = f"seqops-{task_.name}", row["version"]
    intended = task_summary(task_)
    spread = ""
    if "seeds" in row:
        metric = f"test_{task_.promotion_metric}"
        spread = (
            f" Trained with {row['seeds']} seeds: {task_.promotion_metric} "
            f"{_number(row.get(f'{metric}_mean'))} ± {_number(row.get(f'{metric}_std'))}; this is the seed "
            "best on validation."
        )
    metric = task_.promotion_metric
    best = [b for b in baselines if f"test_{metric}" in b]
    beside = "; ".join(f"{b['cell']} {_number(b[f'test_{metric}'])}" for b in best) or "no baseline"
    lines = [
        # One plain line first: the registry's versions table shows a description's first line only.
        f"{row['cell'].upper()}, test {metric} {_number(row.get(f'test_{metric}'))} ({beside}): {status}.",
        "",
        f"# {name} version {version}: {row['cell'].upper()}",
        "",
        "## Intended use",
        f"{intended} Input rows like the example below; each bad row comes back as an error row with its "
        "reason, the others are still predicted.",
        "",
        "## Data",
        f"- source: `{mask_credentials(prepared.source)}`",
        f"- fingerprint: `{prepared.fingerprint}` (the same data gives the same fingerprint)",
        f"- rows: {', '.join(f'{k} {_number(v)}' for k, v in prepared.stats.items())}",
        "",
        "## Test scores (onnxruntime, the exported graphs)",
        *_scores_table(task_, row, baselines),
        "",
        f"Seed {row.get('seed')}, {row.get('epochs')} epochs, {row.get('train_seconds')} s of training."
        + spread,
        "",
        "## Export checks",
        f"- parity (PyTorch vs onnxruntime, unseen shapes): max error {row.get('parity_error', 0):.1e}",
        f"- int8 variant: {row.get('int8', 'not tried')}"
        + (
            f" ({metric} {_number(row[f'test_{metric}_int8'])} with int8)"
            if f"test_{metric}_int8" in row
            else ""
        ),
        f"- size {row.get('onnx_kb')} KB; {_number(row.get('ms_per_row', float('nan')))} ms per row "
        "(test split, one batch)",
        "",
        "## Settings",
        "```json",
        json.dumps(settings, indent=1, sort_keys=True, default=str),
        "```",
        "",
        "## Limitations",
        "- Scored only on the test split of the data above; other data may score lower. Compare with the "
        "baselines before trusting it (a baseline can win: see the table).",
        "- Inputs unlike the training data (lengths, unknown tokens, value ranges) are reported by the batch "
        "job's drift check; predictions on them are less reliable.",
        "",
        "## How to call it",
        "```bash",
        f"seqops predict --model models:/{name}/{version} --input rows.jsonl --output predictions.jsonl",
        "```",
        "```python",
        "import mlflow.pyfunc",
        f'model = mlflow.pyfunc.load_model("models:/{name}/{version}")',
        "predictions = model.predict(rows)  # a DataFrame or a list of dicts",
        "```",
    ]
    return "\n".join(lines)


def registered_model_description(task_: Task) -> str:
    """The registered model's description: what its versions are and how to use the champion."""
    name = f"seqops-{task_.name}"
    intended = task_summary(task_)
    return (
        f"{intended} Every pipeline run registers its RNN, LSTM and GRU here; the alias `champion` moves "
        f"to a new version only if it beats the current one on test {task_.promotion_metric} "
        f"({direction_words(task_)}). Each version's description is its model card.\n\n"
        f"Serve the champion: `seqops predict --model models:/{name}@champion -i rows.jsonl -o out.jsonl`."
    )


def describe_versions(
    task_: Task,
    prepared: PreparedData,
    rows: list[dict[str, Any]],
    baselines: list[dict[str, Any]],
    decision: dict[str, Any],
    settings: dict[str, dict[str, Any]],
) -> None:
    """Write each new version's model card (registry description and run artifact), the model's description.

    Args:
        task_: The task.
        prepared: Its data.
        rows: The cells' result rows; registered ones carry ``version``.
        baselines: The baselines' result rows.
        decision: The champion gate's decision.
        settings: Each cell's run parameters, keyed by cell.
    """
    name = f"seqops-{task_.name}"
    registered = [row for row in rows if "version" in row]
    if not registered:
        return
    tracker.update_registered_model(name, registered_model_description(task_))
    for row in registered:
        if decision.get("promoted") and str(decision.get("candidate_version")) == str(row["version"]):
            status = f"champion, promoted by this run ({decision['reason']})"
        else:
            status = f"registered, not promoted ({decision['reason']})"
        card = model_card(task_, prepared, row, baselines, settings.get(row["cell"], {}), status)
        tracker.update_model_version(name, str(row["version"]), card)
        tracker.log_run_text(row["run_id"], card, "model_card.md")
