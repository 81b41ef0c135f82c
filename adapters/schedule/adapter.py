"""The ``schedule`` adapter: the production plan, read from a CSV or XLSX export of the ERP system.

``ExportAdapter`` follows the file (or the newest file in a folder) and reads each new version
once it has stopped changing. When a new version is invalid or the file disappears, the last good
plan stays in use. Until the plan has been read once, machine offers are withheld, because without
the plan every machine would look free.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from adapters.base import AdapterContext, Observation
from adapters.exports.adapter import ExportAdapter
from adapters.schedule.plan import read_schedule
from adapters.schedule.settings import ScheduleSettings
from kooperant.protocol import ResourceKind

logger = logging.getLogger(__name__)


class ScheduleAdapter(ExportAdapter[ScheduleSettings]):
    """Follow a production plan export and report the orders scheduled on each machine."""

    settings_model = ScheduleSettings
    export_description: ClassVar[str] = "production plan"
    withheld_until_read: ClassVar[frozenset[ResourceKind]] = frozenset({ResourceKind.MACHINE})

    def __init__(self, name: str, settings: ScheduleSettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self._reported_unmapped: frozenset[str] = frozenset()

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        schedule = read_schedule(files["path"], self.settings, self.context.timezone)
        self._report_unmapped(files["path"], {work.resource for work in schedule})
        return list(schedule)

    def _report_unmapped(self, path: Path, resources: set[str]) -> None:
        """Warn once per set of machine codes that 'machines' lacks, when it lists any.

        Such a code becomes a machine of its own, which a rule for all machines would offer as
        free outside its orders: often a typo in the ERP or a machine missing from the map.
        """
        if not self.settings.machines:
            return
        unmapped = frozenset(resources - set(self.settings.machines.values()))
        if unmapped and unmapped != self._reported_unmapped:
            logger.warning(
                "adapter %r: %s has machine codes not listed in 'machines', each offered as a "
                "machine of its own: %s; add them to 'machines' if they are machines you offer",
                self.name,
                path,
                ", ".join(sorted(unmapped)),
            )
        self._reported_unmapped = unmapped
