"""The ``example_silo`` adapter: free silo volume from the JSON file a PLC gateway writes.

A background task checks the file every ``poll_interval_seconds`` and reads it when its size or
modification time changed. ``collect()`` only turns the last good readings into observations, so
it does no I/O. An invalid file is logged once per version, and the last good readings stay in
use. Readings older than ``max_age_seconds`` are not offered, because a gateway that stopped
writing would otherwise keep offering space that may be gone.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import datetime, timedelta

from adapters.base import (
    Adapter,
    AdapterContext,
    ConnectionState,
    Observation,
    ResourceAmounts,
    SourceHealth,
    cancel_task,
)
from adapters.errors import ExportFormatError
from kooperant.protocol import Amount, ResourceKind
from kooperant_example_adapter.readings import GatewayReadings, parse_readings
from kooperant_example_adapter.settings import SiloSettings

logger = logging.getLogger(__name__)

# (modification time in ns, size in bytes) of one version of the file.
FileVersion = tuple[int, int]


class SiloLevelAdapter(Adapter[SiloSettings]):
    """Offer the free volume of silos whose levels a PLC gateway writes to a JSON file."""

    settings_model = SiloSettings

    def __init__(self, name: str, settings: SiloSettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.path = self.resolve_path(settings.path)
        self._readings: GatewayReadings | None = None
        self._version: FileVersion | None = None
        self._state = ConnectionState.CONNECTING
        self._since = context.clock()
        self._last_data: datetime | None = None
        self._errors = {"missing_file": 0, "invalid_file": 0, "missing_tag": 0}
        self._detail: str | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._poll_forever(), name=f"example_silo {self.name}")

    def collect(self) -> list[Observation]:
        readings = self._readings
        if readings is None or self._is_stale(readings):
            return []

        observations: list[Observation] = []
        for silo in self.settings.silos:
            level = readings.levels.get(silo.tag)
            if level is None:
                continue
            free = Amount("free_volume", round(max(silo.capacity_m3 - level, 0.0), 3), "m3")
            observations.append(
                ResourceAmounts(silo.resource, ResourceKind.STORAGE, (free,), silo.display_name)
            )
        return observations

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    def health(self) -> list[SourceHealth]:
        detail = self._detail
        if self._readings is not None and self._is_stale(self._readings):
            written = self._readings.written_at.isoformat()
            detail = (
                f"readings written at {written} are older than {self.settings.max_age_seconds} s"
            )
        return [
            SourceHealth(
                source=str(self.path),
                state=self._state,
                since=self._since,
                last_data=self._last_data,
                errors=dict(self._errors),
                detail=detail,
            )
        ]

    async def poll(self) -> None:
        """Check the file once and read it if it changed since the last check."""
        try:
            version = await asyncio.to_thread(_file_version, self.path)
        except OSError as error:
            # A file that comes back unchanged must be read again.
            self._version = None
            missing = isinstance(error, FileNotFoundError)
            reason = "not found" if missing else f"cannot be checked: {error}"
            self._set_unavailable("missing_file", f"{self.path} {reason}")
            return
        if version == self._version:
            return

        try:
            data = await asyncio.to_thread(self.path.read_bytes)
            readings = parse_readings(data, self.path)
        except (OSError, ExportFormatError) as error:
            self._version = version
            self._set_unavailable("invalid_file", str(error))
            return
        self._version = version
        self._accept(readings)

    async def _poll_forever(self) -> None:
        while True:
            await self.poll()
            await asyncio.sleep(self.settings.poll_interval_seconds)

    def _accept(self, readings: GatewayReadings) -> None:
        missing = [silo.tag for silo in self.settings.silos if silo.tag not in readings.levels]
        if missing:
            self._errors["missing_tag"] += 1
            logger.warning(
                "adapter %r: %s has no reading for tag %s; those silos are not offered",
                self.name,
                self.path,
                ", ".join(missing),
            )

        if self._state is not ConnectionState.CONNECTED:
            if self._state is ConnectionState.DISCONNECTED:
                logger.info("adapter %r: %s can be read again", self.name, self.path)
            self._state = ConnectionState.CONNECTED
            self._since = self.context.clock()
        changed = self._readings is None or self._readings.levels != readings.levels
        self._readings = readings
        self._last_data = self.context.clock()
        self._detail = None
        if changed:
            self.context.notify_changed()

    def _set_unavailable(self, counter: str, message: str) -> None:
        """Count the failure; log it only when the source was fine before or the reason changed."""
        self._errors[counter] += 1
        if self._detail == message:
            return
        consequence = "the last readings stay in use" if self._readings else "no silo is offered"
        logger.error("adapter %r: %s; %s until it can be read", self.name, message, consequence)
        self._detail = message
        if self._state is not ConnectionState.DISCONNECTED:
            self._state = ConnectionState.DISCONNECTED
            self._since = self.context.clock()

    def _is_stale(self, readings: GatewayReadings) -> bool:
        age = self.context.clock() - readings.written_at
        return age > timedelta(seconds=self.settings.max_age_seconds)


def _file_version(path: os.PathLike[str]) -> FileVersion:
    result = os.stat(path)
    return result.st_mtime_ns, result.st_size
