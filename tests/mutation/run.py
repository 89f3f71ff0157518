"""``make mutation``: mutmut on the modules that hold README's promises, in a throwaway copy of the project.

Each mutant (a small change: ``<`` for ``<=``, ``and`` for ``or``, a constant, a removed call...) is run
against the tests that cover the function it changes (mutmut maps them in a first, traced run). A
mutant no test notices is a promise no test holds: it is killed by a better test, or explained in
``tests/mutation/harmless.toml``. The run happens in a copy of the project under the system's
temporary folder, so a mutant that deletes or writes the wrong files cannot touch the checkout.

Usage: ``python tests/mutation/run.py [--keep] [--max-children N] [mutant name patterns...]``. The report
(per module: mutants generated, killed, survived, timed out, not reached; each survivor with its diff
and its explanation) is printed and written to ``.seqops/mutation/report.md``; the exit status is 1 when
a survivor has no explanation.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from fnmatch import fnmatch
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HARMLESS = Path(__file__).with_name("harmless.toml")
REPORT = ROOT / ".seqops" / "mutation" / "report.md"
TEST_CACHE = REPORT.with_name("test-cache")  # trained test networks, shared by every mutant and run
# README's reliability and serving promises, and the functions that hold each (mutmut name patterns).
PROMISES = {
    "the champion gate: better only, ties and directions, re-scoring, its locks": [
        "flows.champion.*",
        "tasks.common.base.xǁTaskǁis_better__*",
    ],
    "MLflow outages retried, then one clear failure": [
        "flows.retries.x_with_retries__*",
        "flows.retries.x_transient__*",
    ],
    "batch parts: resume without duplicates, leftovers discarded, merge in order": ["serving.parts.*"],
    "parity: a graph that disagrees with PyTorch is never kept": [
        "models.export.x_export_checked__*",
        "models.export.x_parity_error__*",
        "models.export.x_export_graphs__*",
        "models.families.classifier.family.xǁClassifierFamilyǁexport__*",
        "models.families.seq2seq.export.x_export_seq2seq_checked__*",
        "models.families.seq2seq.export.x_remove_graphs__*",
    ],
    "the int8 gate: int8 served only when it keeps the metric": [
        "serving.quantize.x_int8_gate__*",
        "serving.quantize.x_discard_int8__*",
        "serving.quantize.xǁGateDecisionǁ*",
    ],
    "series validation: bad steps become error records": ["tasks.common.steps.*"],
}
RESULT_LINE = re.compile(r"^\s+(?P<name>[\w.ǁ]+): (?P<status>.+)$")
STATUSES = ["killed", "timeout", "survived", "no tests", "suspicious", "skipped", "not checked"]
COLUMNS = STATUSES[:4]


def project_files() -> list[str]:
    """Files git tracks, and new ones it does not ignore: what a fresh clone plus this change holds."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if (ROOT / name).is_file()]


def copy_project(target: Path) -> None:
    for name in project_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)


def mutmut(workspace: Path, *arguments: str) -> subprocess.CompletedProcess:
    executable = Path(sys.executable).with_name("mutmut")
    env = {**os.environ, "SEQOPS_TEST_CACHE": str(TEST_CACHE), "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [str(executable), *arguments], cwd=workspace, env=env, capture_output=True, text=True
    )


def module_of(mutant: str) -> str:
    """``serving.parts.xǁPartStoreǁsave__mutmut_3`` -> ``serving/parts.py``."""
    return mutant.split(".x", 1)[0].replace(".", "/") + ".py"


def promise_of(mutant: str) -> str | None:
    return next(
        (promise for promise, patterns in PROMISES.items() if any(fnmatch(mutant, p) for p in patterns)),
        None,
    )


def report(workspace: Path, patterns: list[str], minutes: float) -> tuple[str, int]:
    """The report as Markdown, and the number of survivors nobody explained."""
    listed = mutmut(workspace, "results", "--all", "true").stdout.splitlines()
    results = {
        match["name"]: match["status"]
        for match in map(RESULT_LINE.match, listed)
        if match and any(fnmatch(match["name"], pattern) for pattern in patterns)
    }
    harmless = tomllib.loads(HARMLESS.read_text()) if HARMLESS.is_file() else {}
    counts: dict[tuple[str, str], Counter] = defaultdict(Counter)
    for name, status in results.items():
        counts[promise_of(name) or "other", module_of(name)][status] += 1
    total = Counter(status for status in results.values())
    lines = [
        f"{len(results)} mutants, {minutes:.0f} min: "
        + ", ".join(f"{total[status]} {status}" for status in STATUSES if total[status]),
        "",
        "| promise | module | mutants | " + " | ".join(COLUMNS) + " |",
        "|---|---|---:|" + "---:|" * len(COLUMNS),
    ]
    for (promise, module), tally in sorted(counts.items()):
        cells = " | ".join(str(tally[status]) for status in COLUMNS)
        lines.append(f"| {promise} | `{module}` | {sum(tally.values())} | {cells} |")
    survivors = sorted(name for name, status in results.items() if status not in ("killed", "timeout"))
    unexplained = [name for name in survivors if name not in harmless]
    if survivors:
        lines += ["", "Survivors (`tests/mutation/harmless.toml` says why each is harmless):", ""]
    for name in survivors:
        diff = mutmut(workspace, "show", name).stdout.strip().splitlines()
        changed = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        reason = harmless.get(name, "**unexplained**")
        lines.append(f"- `{name}` ({results[name]}): `{' / '.join(c.strip() for c in changed)}` — {reason}")
    return "\n".join(lines), len(unexplained)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mutants", nargs="*", help="mutant name patterns (default: every promise's)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="keep the workspace for `mutmut browse`")
    options = parser.parse_args()
    patterns = options.mutants or [pattern for group in PROMISES.values() for pattern in group]
    workspace = Path(tempfile.mkdtemp(prefix="seqops-mutation-")) / "project"
    copy_project(workspace)
    started = time.perf_counter()
    run = mutmut(workspace, "run", "--max-children", str(options.max_children), *patterns)
    if run.returncode:
        print(run.stdout[-3000:] + run.stderr[-3000:], file=sys.stderr)
        return run.returncode
    text, unexplained = report(workspace, patterns, (time.perf_counter() - started) / 60)
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(text + "\n")
    print(text)
    print(f"\nreport: {REPORT}" + (f"; workspace kept at {workspace}" if options.keep else ""))
    if not options.keep:
        shutil.rmtree(workspace.parent, ignore_errors=True)
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
