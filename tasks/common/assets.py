"""A model bundle's codec assets read back: JSON settings checked against their types, named on failure.

Used by every codec's ``load``; a missing, unreadable or mistyped file is a ``BundleError`` that names
it (and the field), so a damaged bundle is one clear line, not a traceback from deep in a library.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, TypeAdapter, ValidationError

from tasks.common.errors import BundleError, describe_validation

T = TypeVar("T")


def _distinct(names: list[str]) -> list[str]:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"names repeated: {repeated}")
    return names


# Class names as a codec's settings hold them: two at least, none twice (probabilities are keyed by them).
ClassNames = Annotated[list[str], Field(min_length=2), AfterValidator(_distinct)]


def read_asset(directory: Path, name: str, schema: Any = dict[str, Any]) -> Any:
    """A JSON file of a model bundle (or prepared cache), checked against ``schema``.

    Args:
        directory: The bundle folder.
        name: The file's name in it, such as ``codec.json``.
        schema: A type pydantic validates (a ``TypedDict``, ``dict[str, Any]``...).

    Raises:
        BundleError: Naming the file, and the field when its content has the wrong type.
    """
    path = Path(directory) / name
    try:
        value = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BundleError(f"{path} is missing") from None
    except OSError as error:
        raise BundleError(f"{path} cannot be read: {error.strerror or error}") from None
    except (ValueError, RecursionError) as error:  # not JSON, not UTF-8, or nested beyond reason
        raise BundleError(f"{path} is not valid JSON ({error})") from None
    try:
        return TypeAdapter(schema).validate_python(value)
    except ValidationError as error:
        raise BundleError(f"{path}: {describe_validation(error)}") from None


def build_codec(factory: Callable[..., T], source: Path, *args: Any, **settings: Any) -> T:
    """``factory(*args, **settings)``, a refusal of the saved settings naming the file they came from."""
    try:
        return factory(*args, **settings)
    except (TypeError, ValueError) as error:
        raise BundleError(f"{source}: {error}") from None
