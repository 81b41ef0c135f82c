"""The ``warehouse`` adapter: free storage space, read from an export of storage locations.

``ExportAdapter`` follows the export file (or the newest file in a folder) and reads each new
version once it has stopped changing. When a new version is invalid or the file disappears, the
last good amounts stay in use. Locations over capacity count as full, and the adapter logs one
warning per export version that has them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from adapters.base import Observation
from adapters.exports.adapter import ExportAdapter
from adapters.warehouse.locations import read_locations
from adapters.warehouse.settings import WarehouseSettings

logger = logging.getLogger(__name__)


class WarehouseAdapter(ExportAdapter[WarehouseSettings]):
    """Follow a storage locations export and report the free space of each warehouse."""

    settings_model = WarehouseSettings
    export_description: ClassVar[str] = "warehouse locations export"

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        path = files["path"]
        report = read_locations(path, self.settings)
        if report.over_capacity:
            logger.warning(
                "adapter %r: %s: %d of %d locations hold more than their capacity and count as "
                "full; the first is %s",
                self.name,
                path,
                report.over_capacity,
                report.rows,
                report.first_over_capacity,
            )
        return list(report.amounts)
