"""Adapter lookup by type name through the ``kooperant.adapters`` entry point group.

A third-party package registers its adapter in its own ``pyproject.toml``::

    [project.entry-points."kooperant.adapters"]
    my_erp = "my_package.my_module:MyErpAdapter"
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from adapters.base import Adapter
from adapters.errors import UnknownAdapterError

ENTRY_POINT_GROUP = "kooperant.adapters"


@dataclass(frozen=True, slots=True)
class AdapterEntry:
    """One registered adapter type, for listing; ``error`` is set when its class cannot be used.

    ``package`` and ``version`` are those of the distribution that declares the entry point, or
    ``None`` when the entry point comes from no installed distribution.
    """

    name: str
    class_path: str
    package: str | None
    version: str | None
    description: str | None = None
    error: str | None = None


def available_adapters() -> list[str]:
    """Return the sorted type names of all installed adapters."""
    return sorted(point.name for point in entry_points(group=ENTRY_POINT_GROUP))


def load_adapter_class(name: str) -> type[Adapter[Any]]:
    """Return the adapter class registered as ``name``, or raise ``UnknownAdapterError``."""
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        return _load_class(point)
    raise UnknownAdapterError(name, available_adapters())


def describe_adapters() -> list[AdapterEntry]:
    """Import every registered adapter and describe it, sorted by type name.

    An entry point that fails to import or does not name an ``Adapter`` subclass is described
    with the error instead of raising, so one broken package does not hide the others.
    """
    points = sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name)
    return [_describe(point) for point in points]


def _describe(point: EntryPoint) -> AdapterEntry:
    distribution = point.dist
    package = distribution.name if distribution is not None else None
    version = distribution.version if distribution is not None else None
    try:
        adapter_class = _load_class(point)
    except Exception as error:
        # Any exception can escape a third-party module's import; the listing shows it.
        reason = f"{type(error).__name__}: {error}"
        return AdapterEntry(point.name, point.value, package, version, error=reason)
    return AdapterEntry(
        point.name, point.value, package, version, description=_first_line(adapter_class)
    )


def _load_class(point: EntryPoint) -> type[Adapter[Any]]:
    loaded = point.load()
    if not (isinstance(loaded, type) and issubclass(loaded, Adapter)):
        raise TypeError(
            f"entry point {point.value!r} for adapter {point.name!r} is not an Adapter subclass"
        )
    return loaded


def _first_line(adapter_class: type[Any]) -> str | None:
    # inspect.getdoc would return the Adapter base class's docstring for a class without one.
    docstring = inspect.cleandoc(adapter_class.__doc__ or "")
    # Double backquotes mark code in reStructuredText docstrings; on a terminal they are noise.
    first = docstring.partition("\n")[0].strip().replace("``", "")
    return first or None
