"""seqops deployments and their cron schedules, defined once in ``infra/prefect.yaml``.

A Prefect worker runs them from a work pool (``prefect deploy --all --prefect-file infra/prefect.yaml``);
``seqops schedule`` serves the same deployments from one long-running process (Prefect's ``serve``),
for a machine without a work pool.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

from prefect import Flow
from prefect.client.schemas.schedules import CronSchedule
from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import ParameterTypeError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from flows.config import ConfigError, read_yaml
from tasks.common.errors import describe_validation

# The checkout the flows run from (a worker's SEQOPS_PROJECT_DIR, or this source tree).
PROJECT_DIR = Path(os.environ.get("SEQOPS_PROJECT_DIR") or Path(__file__).resolve().parents[1])
DEPLOYMENTS_FILE = PROJECT_DIR / "infra" / "prefect.yaml"


class ScheduleSpec(BaseModel):
    """One cron schedule of a deployment."""

    model_config = ConfigDict(extra="forbid")

    cron: str
    timezone: str = "UTC"
    active: bool = True

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        CronSchedule(cron=cron)  # raises ValueError on a malformed expression
        return cron

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, timezone: str) -> str:
        CronSchedule(cron="0 0 * * *", timezone=timezone)  # raises ValueError on an unknown zone
        return timezone

    def schedule(self) -> CronSchedule:
        """The Prefect schedule."""
        return CronSchedule(cron=self.cron, timezone=self.timezone)


class DeploymentSpec(BaseModel):
    """A deployment as ``prefect.yaml`` declares it (work-pool fields are the worker's business)."""

    model_config = ConfigDict(extra="ignore")

    name: str
    entrypoint: str = Field(pattern=r"^[\w/]+\.py:\w+$")
    description: str = ""
    parameters: dict[str, Any] = {}
    schedules: list[ScheduleSpec] = []
    tags: list[str] = []
    concurrency_limit: int | None = Field(None, ge=1)

    def flow(self) -> Flow:
        """Import the flow the entrypoint names (``flows/pipeline.py:pipeline``).

        Raises:
            ConfigError: If the entrypoint names no flow that can be imported.
        """
        path, function = self.entrypoint.split(":")
        try:
            found = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), function)
        except (ImportError, AttributeError) as error:
            raise ConfigError(f"deployment {self.name}: entrypoint {self.entrypoint}: {error}") from None
        if not isinstance(found, Flow):
            raise ConfigError(f"deployment {self.name}: entrypoint {self.entrypoint} is not a Prefect flow")
        return found


def check_parameters(spec: DeploymentSpec, where: str) -> None:
    """Refuse parameters the flow does not take, and scheduled runs that would lack a required one.

    Raises:
        ConfigError: Naming the deployment and the parameter.
    """
    flow = spec.flow()
    known = set(flow.parameters.properties)
    unknown = sorted(set(spec.parameters) - known)
    if unknown:
        raise ConfigError(f"{where}.parameters: {flow.name} takes no {unknown}; it takes {sorted(known)}")
    try:
        if spec.schedules:  # a scheduled run gets nothing but these parameters
            flow.validate_parameters(spec.parameters)
    except ParameterTypeError as error:
        raise ConfigError(f"{where}.parameters: {error}") from None


def load_deployments(path: Path = DEPLOYMENTS_FILE, names: list[str] | None = None) -> list[DeploymentSpec]:
    """Read and validate the deployments of a ``prefect.yaml``.

    Args:
        path: The file (default: ``infra/prefect.yaml``).
        names: Only these deployments (default: all).

    Returns:
        The deployments, each checked against its flow's signature.

    Raises:
        ConfigError: For a missing file, an unknown deployment name or an invalid field (named).
    """
    if not path.is_file():
        raise ConfigError(f"deployments file not found: {path}")
    raw = read_yaml(path, "deployments file").get("deployments") or []
    if not isinstance(raw, list):
        raise ConfigError(f"{path.name}: deployments must be a list, not a {type(raw).__name__}")
    specs = []
    for index, entry in enumerate(raw):
        where = f"{path.name}: deployments[{index}]"
        try:
            spec = DeploymentSpec.model_validate(entry)
        except ValidationError as error:
            raise ConfigError(f"{where}: {describe_validation(error)}") from None
        if names is None or spec.name in names:
            check_parameters(spec, f"{where} ({spec.name})")
            specs.append(spec)
    missing = sorted(set(names or []) - {spec.name for spec in specs})
    if missing:
        names_found = [entry.get("name") for entry in raw if isinstance(entry, dict)]
        raise ConfigError(f"no deployment named {missing} in {path}; it has {names_found}")
    return specs


def runner_deployments(specs: list[DeploymentSpec]) -> list[RunnerDeployment]:
    """The deployments as Prefect ``serve`` takes them, schedules and parameter forms included."""
    return [
        spec.flow().to_deployment(
            name=spec.name,
            description=spec.description or None,
            parameters=spec.parameters,
            schedules=[s.schedule() for s in spec.schedules if s.active],
            tags=spec.tags,
            concurrency_limit=spec.concurrency_limit,
        )
        for spec in specs
    ]
