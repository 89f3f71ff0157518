"""Plug-ins found through entry points: tasks (``seqops.tasks``) and network families (``seqops.families``).

seqops registers its own tasks and families the same way a user's package does, in its
``pyproject.toml``::

    [project.entry-points."seqops.tasks"]
    sentiment = "tasks.sentiment:TASK"

Code copied without its package metadata (an MLflow model's ``code_paths``) has no entry points; a
built-in plug-in is then found by its module, ``<builtin package>.<name>``.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points
from typing import Generic, TypeVar

T = TypeVar("T")


class PluginError(KeyError):
    """An unknown plug-in name, or an entry point that does not load what its group expects."""

    def __str__(self) -> str:
        return str(self.args[0])


class PluginRegistry(Generic[T]):
    """Plug-ins of one entry-point group, loaded on first use (serving a model loads only its task).

    Args:
        group: The entry-point group, such as ``seqops.tasks``.
        what: What a plug-in is, for messages (``task``, ``network family``).
        expected: The type every plug-in must be an instance of.
        builtin_package: Where built-in plug-ins live (``tasks``), for code without package metadata.
        attribute: The name of the plug-in object in a built-in module (``TASK``).
    """

    def __init__(self, group: str, what: str, expected: type[T], builtin_package: str, attribute: str):
        self.group, self.what, self.expected = group, what, expected
        self.plural = what[:-1] + "ies" if what.endswith("y") else what + "s"
        self.builtin_package, self.attribute = builtin_package, attribute
        self._loaded: dict[str, T] = {}

    def _entry_points(self) -> dict[str, list[EntryPoint]]:
        found: dict[str, list[EntryPoint]] = {}
        for point in entry_points(group=self.group):
            found.setdefault(point.name, []).append(point)
        return found

    def names(self) -> list[str]:
        """Every registered name, sorted."""
        return sorted(self._entry_points())

    def get(self, name: str) -> T:
        """The plug-in registered as ``name``.

        Raises:
            PluginError: If no package registers ``name``, two do, or what it names is not a plug-in.
        """
        if name in self._loaded:
            return self._loaded[name]
        points = self._entry_points().get(name, [])
        if len({point.value for point in points}) > 1:
            sources = ", ".join(sorted({point.value for point in points}))
            raise PluginError(f"{self.what} '{name}' is registered twice ({sources}); uninstall one")
        if points:
            origin = points[0].value
            try:
                plugin = points[0].load()
            except (ImportError, AttributeError) as error:  # the package is broken, not seqops
                raise PluginError(f"{self.what} '{name}' ({origin}) cannot be loaded: {error}") from error
        else:
            plugin, origin = self._builtin(name), f"{self.builtin_package}.{name}"
        if not isinstance(plugin, self.expected):
            kind = type(plugin).__name__
            raise PluginError(f"{self.what} '{name}' ({origin}) is a {kind}, not a {self.expected.__name__}")
        self._loaded[name] = plugin
        return plugin

    def _builtin(self, name: str) -> T:
        unknown = PluginError(
            f"unknown {self.what} '{name}'; registered {self.plural}: {self.names()} "
            f"(a package adds one under the '{self.group}' entry points)"
        )
        if not name.isidentifier():
            raise unknown
        try:
            module = importlib.import_module(f"{self.builtin_package}.{name}")
        except ModuleNotFoundError as error:
            if error.name not in (f"{self.builtin_package}.{name}", self.builtin_package):
                raise
            raise unknown from None
        if not hasattr(module, self.attribute):
            raise unknown
        return getattr(module, self.attribute)
