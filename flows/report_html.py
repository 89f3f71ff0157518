"""The bake-off report as one static HTML page: inline CSS, plots as data URIs, no script, no network.

Every value reaches the page through Jinja's autoescaping (``flows/report_page.py`` holds the template),
so a hostile cell, parameter or tag name shows as text and never becomes markup.
"""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

import mlflow
from jinja2 import Environment

from flows import links
from flows.links import UI_URL_VARIABLE
from flows.report_model import Row, TaskReport
from flows.report_page import TEMPLATE
from flows.tables import format_value
from serving.redaction import mask_credentials


def render(reports: list[TaskReport], created: float) -> str:
    """The page: a section per task (summary, table, champion history, plots), links to MLflow.

    Args:
        reports: What ``flows.report.gather`` read.
        created: When the report was made (seconds since the epoch).

    Returns:
        The HTML text.
    """
    environment = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    environment.filters["number"] = number
    environment.filters["when"] = when
    linked = links_wanted()
    return environment.from_string(TEMPLATE).render(
        tasks=[task_view(report, linked) for report in reports],
        created=when(created),
        tracking=mask_credentials(mlflow.get_tracking_uri()),
    )


def links_wanted() -> bool:
    """Whether the page links to the MLflow UI: a tracking server over http(s), or ``SEQOPS_MLFLOW_UI_URL``.

    A local store's page shows plain run ids: no UI need be serving it where the page is read.
    """
    served = urlsplit(mlflow.get_tracking_uri()).scheme in ("http", "https")
    return served or bool(os.environ.get(UI_URL_VARIABLE))


def task_view(report: TaskReport, linked: bool) -> dict[str, Any]:
    """What the template needs of one task: rows as display values, links (if ``linked``), the sentence."""
    champion = report.champion
    lead = f"test_{report.metric}"
    sign = 1 if report.direction == "max" else -1
    scored = [row.scores[lead] for row in report.rows if lead in row.scores]
    best = max(scored, key=lambda value: sign * value) if scored else None

    def run_link(run_id: str | None) -> str | None:
        return links.run_link(report.experiment_id, run_id) if linked and run_id else None

    def version_link(version: str) -> str | None:
        return links.version_link(f"seqops-{report.task}", version) if linked else None

    rows = []
    for row in report.rows:
        rows.append(
            {
                "row": row,
                "champion": champion is not None and row.version == champion.version,
                "baseline": row.name.startswith("baseline "),
                "scores": [score_text(row, key) for key in report.columns],
                "best": best is not None and row.scores.get(lead) == best,
                "int8_delta": row.int8_delta(report.metric),
                "link": run_link(row.run_id),
                "version_link": version_link(row.version) if row.version else None,
            }
        )
    return {
        "report": report,
        "anchor": "task-" + "".join(c if c.isalnum() else "-" for c in report.task),
        "better": report_better(report),
        "headers": [key.removeprefix("test_") for key in report.columns],
        "rows": rows,
        "seeded": any(row.seeds for row in report.rows),
        "summary": summary(report),
        "experiment_link": links.runs_view_link(report.experiment_id) if linked else None,
        "parent_link": run_link(report.parent_run_id),
        "history": [
            {"version": v, "link": version_link(v.version), "run_link": run_link(v.run_id)}
            for v in reversed(report.history)
        ],
        "plotted": [row for row in report.rows if row.plots],
    }


def summary(report: TaskReport) -> str:
    """One sentence: the champion (or the latest run's best cell) against the best baseline."""
    lead, metric = f"test_{report.metric}", report.metric
    sign = 1 if report.direction == "max" else -1
    cells = [r for r in report.rows if not r.name.startswith("baseline ") and lead in r.scores]
    baselines = [r for r in report.rows if r.name.startswith("baseline ") and lead in r.scores]
    champion = report.champion
    if champion is not None and champion.score is not None:
        name, score = f"{champion.cell.upper() or 'the model'} (version {champion.version})", champion.score
        if champion.fingerprint and champion.fingerprint != report.fingerprint:
            name += ", scored on other data than this run's"
        opening = f"Champion: {name}, {metric} {number(score)}"
    elif cells:
        top = max(cells, key=lambda r: sign * r.scores[lead])
        name, score = top.name.upper(), top.scores[lead]
        opening = f"No champion yet; best cell of this run: {name}, {metric} {number(score)}"
    else:
        return f"No champion yet, and no cell of this run was scored on {metric}."
    if not baselines:
        return f"{opening}; no classical baseline was scored ({report_better(report)})."
    base = max(baselines, key=lambda r: sign * r.scores[lead])
    gap = score - base.scores[lead]
    verdict = "level" if gap == 0 else "ahead" if sign * gap > 0 else "behind"
    return (
        f"{opening}; best baseline {base.name.removeprefix('baseline ')} {number(base.scores[lead])}: "
        f"{gap:+.3g}, {verdict} ({report_better(report)})."
    )


def report_better(report: TaskReport) -> str:
    """``higher is better`` or ``lower is better`` for the task's promotion metric."""
    return "higher is better" if report.direction == "max" else "lower is better"


def score_text(row: Row, key: str) -> str:
    """A score as shown: ``0.8190``, with seeds ``0.8190 ± 0.004``; empty when not measured."""
    if key not in row.scores:
        return ""
    spread = f" ± {row.spread[key]:.2g}" if key in row.spread else ""
    return number(row.scores[key]) + spread


def number(value: Any) -> str:
    """A number as the CLI's tables show it (four significant digits); empty when there is none."""
    return format_value(float(value)) if isinstance(value, int | float) else ""


def when(seconds: float) -> str:
    """A local date and time to the minute."""
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))
