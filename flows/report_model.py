"""The bake-off report's facts as plain data: per task, its models' rows, champion history and plots.

``flows.report`` reads them from MLflow; ``flows.report_html`` renders them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tasks import SeqopsError


class ReportError(SeqopsError, ValueError):
    """The report cannot be made as asked (unknown task, no runs yet, output not writable)."""

    label = "report error"


@dataclass
class Row:
    """One model of a task's latest pipeline run: a cell (its child run) or a classical baseline.

    Attributes:
        name: The cell (``gru``) or ``baseline <name>``.
        scores: Test metrics as result-row keys (``test_macro_f1``); with seeds, the mean over them.
        spread: Standard deviations over seeds, by the same keys.
        seeds: Seeds trained (``None``: one).
        ship: ``onnx_kb``, ``ms_per_row``, ``train_seconds``, ``parity_error`` where measured.
        int8: The int8 gate's decision (``accepted``, ``refused``) and its reason.
        run_id: The run holding the row (the parent run's for a baseline).
        version: The registered version it became, if any.
        plots: The PNGs its run logged.
        shipped_scores: With seeds, the test scores of the seed registered (its int8 delta's source).
    """

    name: str
    scores: dict[str, float]
    spread: dict[str, float] = field(default_factory=dict)
    seeds: int | None = None
    ship: dict[str, float] = field(default_factory=dict)
    int8: tuple[str, str] | None = None
    run_id: str | None = None
    version: str | None = None
    plots: list[Plot] = field(default_factory=list)
    shipped_scores: dict[str, float] = field(default_factory=dict)

    def int8_delta(self, metric: str) -> float | None:
        """int8 minus fp32 on ``metric`` (``None`` when either is missing).

        Both from one source: the seeds' means when both have one, else the scores of the seed shipped.
        """
        fp32, int8 = f"test_{metric}", f"test_{metric}_int8"
        source = self.scores if int8 in self.spread or fp32 not in self.spread else self.shipped_scores
        return None if fp32 not in source or int8 not in source else source[int8] - source[fp32]


@dataclass
class Version:
    """A registered version of the task's model (the champion history).

    Attributes:
        version: Its number.
        cell: The cell that learned it.
        score: Its test score on the promotion metric (from its tag).
        fingerprint: The data it was scored on.
        created: When it was registered (seconds since the epoch).
        champion: Whether it holds the ``champion`` alias now.
        run_id: The run that logged it.
        held: When it held the ``champion`` alias (``since ... until ...``), or empty if it never did.
    """

    version: str
    cell: str
    score: float | None
    fingerprint: str
    created: float
    champion: bool
    run_id: str
    held: str = ""


@dataclass
class TaskReport:
    """What the report says about one task.

    Attributes:
        task: The task's name.
        metric: Its promotion metric.
        direction: ``max`` or ``min``.
        columns: The score keys its table shows (the promotion metric first).
        experiment_id: The MLflow experiment.
        parent_run_id: The latest pipeline run.
        run_name: Its name.
        fingerprint: The data it was trained and tested on.
        promotion: The champion gate's decision in that run.
        rows: Its cells, then its baselines.
        history: The registered versions, oldest first.
        plots: The PNGs the pipeline run itself logged.
    """

    task: str
    metric: str
    direction: str
    columns: list[str]
    experiment_id: str
    parent_run_id: str
    run_name: str
    fingerprint: str
    promotion: str
    rows: list[Row]
    history: list[Version]
    plots: list[Plot]

    @property
    def champion(self) -> Version | None:
        """The version holding the ``champion`` alias."""
        return next((v for v in self.history if v.champion), None)


@dataclass
class Plot:
    """A PNG a run logged, ready to embed.

    Attributes:
        name: Its artifact path (``confusion_matrix.png``).
        data_uri: ``data:image/png;base64,...``; empty when the file was too big to embed.
    """

    name: str
    data_uri: str
