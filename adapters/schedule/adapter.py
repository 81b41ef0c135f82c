"""The ``schedule`` adapter: the production plan, read from a CSV or XLSX export of the ERP system.

``ExportAdapter`` follows the file (or the newest file in a folder) and reads each new version
once it has stopped changing. When a new version is invalid or the file disappears, the last good
plan stays in use. Until the plan has been read once, machine offers are withheld, because without
the plan every machine would look free.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from adapters.base import Observation
from adapters.exports.adapter import ExportAdapter
from adapters.schedule.plan import read_schedule
from adapters.schedule.settings import ScheduleSettings
from kooperant.protocol import ResourceKind


class ScheduleAdapter(ExportAdapter[ScheduleSettings]):
    """Follow a production plan export and report the orders scheduled on each machine."""

    settings_model = ScheduleSettings
    export_description: ClassVar[str] = "production plan"
    withheld_until_read: ClassVar[frozenset[ResourceKind]] = frozenset({ResourceKind.MACHINE})

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        return list(read_schedule(files["path"], self.settings, self.context.timezone))
