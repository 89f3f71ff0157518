"""The generic layers never name a task or a network family, and never branch on which one they hold."""

import re
from pathlib import Path

import pytest

from tasks import Task, get_task, task_names

ROOT = Path(__file__).resolve().parents[2]
GENERIC = [
    path
    for folder in ("flows", "serving", "models")
    for path in sorted((ROOT / folder).rglob("*.py"))
    if "families" not in path.relative_to(ROOT).parts
]
FAMILY_NAMES = ["classifier", "forecaster", "seq2seq", "language_model"]
# Whatever a user's task is called, code that branches on a plug-in's identity is task-specific code.
IDENTITY_BRANCH = re.compile(r"\b\w*(task|family|codec)\w*\.(name|kind)\s*(==|!=|in\b)")


def plugin_names() -> list[str]:
    names = set(task_names()) | {"text_generation"} | set(FAMILY_NAMES)
    # A task's name in words too ("action recognition"), and its data sets' common names.
    return sorted(names | {name.replace("_", " ") for name in names})


@pytest.mark.parametrize("path", GENERIC, ids=lambda path: str(path.relative_to(ROOT)))
def test_generic_code_names_no_task_or_family(path):
    text = path.read_text()
    named = [name for name in plugin_names() if re.search(rf"\b{re.escape(name)}\b", text, re.IGNORECASE)]
    assert not named, f"{path.relative_to(ROOT)} names {named}: move that code into the task or family"


@pytest.mark.parametrize("path", GENERIC, ids=lambda path: str(path.relative_to(ROOT)))
def test_generic_code_never_branches_on_which_plugin_it_holds(path):
    branches = [line.strip() for line in path.read_text().splitlines() if IDENTITY_BRANCH.search(line)]
    assert not branches, f"{path.relative_to(ROOT)} branches on a plug-in's identity: {branches}"


def test_tasks_have_no_kind_to_branch_on():
    assert not hasattr(Task, "kind")
    assert all(not hasattr(get_task(name), "kind") for name in task_names())


def test_the_boundary_check_sees_the_generic_layers():
    names = {path.relative_to(ROOT).as_posix() for path in GENERIC}
    assert {"flows/cell.py", "serving/batch.py", "models/train.py", "models/export.py"} <= names
    assert not any(name.startswith("models/families/") for name in names)
