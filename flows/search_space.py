"""Search spaces of ``seqops tune``: a task's declared ranges, narrowed or widened by a profile.

A dimension is keyed ``section.field``, where the section is ``data``, ``model`` or ``train`` of a
task's settings (``model.options.<name>`` reaches a family's own options). Ranges whose bounds are
both integers are searched over integers.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

SECTIONS = ("data", "model", "train")


class Dimension(BaseModel):
    """One searched setting: a range (``low``, ``high``, optionally ``log``) or a list of ``choices``."""

    model_config = ConfigDict(extra="forbid")

    low: int | float | None = None
    high: int | float | None = None
    log: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _range_or_choices(self) -> Dimension:
        ranged = self.low is not None or self.high is not None
        if (self.choices is not None) == ranged:
            raise ValueError("give either low and high, or choices")
        if self.choices is not None and not self.choices:
            raise ValueError("choices must not be empty")
        if ranged:
            if self.low is None or self.high is None:
                raise ValueError("a range needs both low and high")
            if self.low > self.high:
                raise ValueError(f"low ({self.low}) is above high ({self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log range needs low > 0")
        return self

    def suggest(self, trial: Any, name: str) -> Any:
        """The value an Optuna trial draws for this dimension."""
        if self.choices is not None:
            return trial.suggest_categorical(name, self.choices)
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(name, self.low, self.high, log=self.log)
        return trial.suggest_float(name, float(self.low), float(self.high), log=self.log)


def merged_space(
    declared: dict[str, dict[str, Any]], overrides: dict[str, Dimension | None]
) -> dict[str, Dimension]:
    """The task's declared space with a profile's entries replacing (or, when ``None``, removing) its own."""
    space = {key: Dimension.model_validate(value) for key, value in declared.items()}
    for key, dimension in overrides.items():
        if dimension is None:
            space.pop(key, None)
        else:
            space[key] = dimension
    return space


def check_keys(space: dict[str, Any], fields: dict[str, set[str]]) -> None:
    """Refuse a key that names no section or no field of its section.

    Args:
        space: The dimensions by key.
        fields: The settable fields of each section.

    Raises:
        ValueError: Naming the key and what it could be.
    """
    for key in space:
        section, _, field = key.partition(".")
        if section not in SECTIONS or not field:
            raise ValueError(f"search_space.{key}: write it as <section>.<field>, section one of {SECTIONS}")
        if section == "model" and field.startswith("options."):
            continue
        if field not in fields[section]:
            raise ValueError(
                f"search_space.{key}: {section} has no field '{field}'; known: {sorted(fields[section])}"
            )


def with_values(settings: dict[str, dict[str, Any]], values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Task settings (``{data, model, train}`` as plain dicts) with drawn values set at their keys."""
    updated = {section: dict(settings.get(section, {})) for section in SECTIONS}
    for key, value in values.items():
        section, _, field = key.partition(".")
        if field.startswith("options."):
            updated[section]["options"] = {**updated[section].get("options", {}), field[8:]: value}
        else:
            updated[section][field] = value
    return updated
