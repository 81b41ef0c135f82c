"""Adapter lookup by type name through the ``kooperant.adapters`` entry point group.

A third-party package registers its adapter in its own ``pyproject.toml``::

    [project.entry-points."kooperant.adapters"]
    my_erp = "my_package.my_module:MyErpAdapter"
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from adapters.base import Adapter
from adapters.errors import UnknownAdapterError

ENTRY_POINT_GROUP = "kooperant.adapters"


def available_adapters() -> list[str]:
    """Return the sorted type names of all installed adapters."""
    return sorted(point.name for point in entry_points(group=ENTRY_POINT_GROUP))


def load_adapter_class(name: str) -> type[Adapter[Any]]:
    """Return the adapter class registered as ``name``, or raise ``UnknownAdapterError``."""
    for point in entry_points(group=ENTRY_POINT_GROUP, name=name):
        loaded = point.load()
        if not (isinstance(loaded, type) and issubclass(loaded, Adapter)):
            raise TypeError(f"entry point {point.value!r} for adapter {name!r} is not an Adapter")
        return loaded
    raise UnknownAdapterError(name, available_adapters())
