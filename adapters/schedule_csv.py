"""The ``schedule_csv`` adapter: the production plan, read from a CSV export of the ERP system.

The adapter polls the file and reads each new version once it has stopped changing. When a new
version is invalid or the file disappears, the last good plan stays in use. The settings and the
pure parser ``read_schedule`` live in ``adapters.schedule_plan`` and are re-exported here.

Until the plan has been read once, machine offers are withheld, because without the plan every
machine would look free.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from adapters.base import Adapter, AdapterContext, Observation, ScheduledWork, cancel_task
from adapters.errors import ExportFormatError
from adapters.exports.watched_file import FileVersion, WatchedFile
from adapters.schedule_plan import (
    ScheduleColumns,
    ScheduleCsvSettings,
    parse_schedule,
    read_schedule,
    slugify_machine_code,
)
from kooperant.protocol import ResourceKind

__all__ = [
    "ScheduleColumns",
    "ScheduleCsvAdapter",
    "ScheduleCsvSettings",
    "parse_schedule",
    "read_schedule",
    "slugify_machine_code",
]

logger = logging.getLogger(__name__)


class ScheduleCsvAdapter(Adapter[ScheduleCsvSettings]):
    """Follow a production plan export and report the orders scheduled on each machine."""

    settings_model = ScheduleCsvSettings

    def __init__(self, name: str, settings: ScheduleCsvSettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.path = self.resolve_path(settings.path)
        self.watched = WatchedFile(self.path, settings.stable_seconds)
        self._schedule: list[ScheduledWork] | None = None
        self._problem = "the production plan has not been read yet"
        self._reported_missing = False
        # The file version, or the message when there is no version, of the last logged failure.
        self._reported_failure: FileVersion | str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name=f"schedule {self.name}")

    def collect(self) -> list[Observation]:
        return list(self._schedule or [])

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    def withheld_kinds(self) -> Mapping[ResourceKind, str]:
        if self._schedule is not None:
            return {}
        return {ResourceKind.MACHINE: f"production plan {self.path} not read: {self._problem}"}

    async def _poll_forever(self) -> None:
        while True:
            await self.poll()

            # A version that is settling is checked again as soon as it can be ready, so a new
            # export is read after stable_seconds rather than up to a whole poll interval later.
            delay = self.settings.poll_interval_seconds
            pending = self.watched.seconds_until_stable()
            if pending is not None:
                delay = min(delay, pending)
            await asyncio.sleep(delay)

    async def poll(self) -> None:
        """Check the file once and read it if a new version has become stable."""
        try:
            version = await asyncio.to_thread(self.watched.poll)
        except OSError as error:
            self._report_failure(None, f"cannot check {self.path}: {error}")
            return
        if not self.watched.exists:
            self._report_missing()
            return
        self._reported_missing = False
        if version is not None:
            await self._read(version)

    async def _read(self, version: FileVersion) -> None:
        try:
            data = await asyncio.to_thread(self.path.read_bytes)
            changed = await asyncio.to_thread(self.watched.current_version) != version
        except OSError as error:
            self._report_failure(version, f"cannot read {self.path}: {error}")
            return
        if changed:
            # Written to again while it was being read; the next polls wait for it to settle.
            return

        try:
            schedule = parse_schedule(data, self.path, self.settings, self.context.timezone)
        except ExportFormatError as error:
            self._report_failure(version, str(error))
            return

        self._schedule = schedule
        self._reported_failure = None
        order_count = sum(len(work.orders) for work in schedule)
        logger.info(
            "adapter %r: read %d orders on %d machines from %s",
            self.name,
            order_count,
            len(schedule),
            self.path,
        )
        self.context.notify_changed()

    def _report_missing(self) -> None:
        if self._reported_missing:
            return
        self._reported_missing = True
        self._problem = "the file does not exist"
        logger.warning(
            "adapter %r: production plan %s not found; %s until it appears",
            self.name,
            self.path,
            self._kept_data(),
        )

    def _report_failure(self, version: FileVersion | None, message: str) -> None:
        """Log a failed read once per file version; the last good plan stays in use."""
        self._problem = message
        failure = version or message
        if failure == self._reported_failure:
            return
        self._reported_failure = failure
        logger.error("adapter %r: %s; %s", self.name, message, self._kept_data())

    def _kept_data(self) -> str:
        if self._schedule is None:
            return "machine offers are withheld"
        return "the last plan read stays in use"
