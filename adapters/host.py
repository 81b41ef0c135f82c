"""The ``host`` adapter: free CPU, memory and disk of the machine the agent runs on.

psutil is sampled in a background task every ``sample_interval_seconds``. ``collect()`` returns the
latest sample as one ``ResourceAmounts`` of kind ``it_capacity`` with these amounts:

- ``cpu_free``: idle logical cores (``cpu_count * (1 - cpu_percent / 100)``) minus the reserve;
- ``memory_free``: available memory in GiB minus the reserve;
- ``disk_free``: free disk in GiB minus the reserve, one amount per mount, labelled with the mount.

No amount goes below 0. A configured mount that does not exist is logged as an error at start and
skipped, so one wrong path does not stop the agent from offering the rest.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
from pydantic import BaseModel, ConfigDict, Field

from adapters.base import (
    Adapter,
    AdapterContext,
    AdapterSettings,
    Observation,
    ResourceAmounts,
    cancel_task,
)
from adapters.errors import AdapterSettingsError
from kooperant.protocol import IDENTIFIER_PATTERN, Amount, ResourceKind

logger = logging.getLogger(__name__)

GIB = 1024**3
CPU_FIRST_SAMPLE_SECONDS = 0.2


def _default_mounts() -> tuple[str, ...]:
    return ("C:\\",) if os.name == "nt" else ("/",)


class HostReserve(BaseModel):
    """Capacity the owner keeps back for the host's own work; never offered."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cores: float = Field(default=0.0, ge=0, description="Logical CPU cores kept back.")
    memory_gib: float = Field(default=0.0, ge=0, description="Memory kept back, in GiB.")
    disk_gib: float = Field(default=0.0, ge=0, description="Disk kept back on each mount, in GiB.")


class HostSettings(AdapterSettings):
    """Settings of the ``host`` adapter."""

    resource: str = Field(pattern=IDENTIFIER_PATTERN, description="Resource id of this host.")
    # Not ``name``: the agent config uses that key for the adapter instance's own name.
    display_name: str | None = Field(default=None, description="Display name of the host.")
    mounts: tuple[str, ...] = Field(
        default_factory=_default_mounts,
        min_length=1,
        description="Paths whose file systems are reported in disk_free.",
    )
    reserve: HostReserve = Field(default_factory=HostReserve)
    sample_interval_seconds: float = Field(default=5.0, gt=0)


@dataclass(frozen=True, slots=True)
class HostSample:
    """One reading of the host's resources, in psutil's units."""

    cpu_count: int
    cpu_percent: float
    memory_available_bytes: int
    disk_free_bytes: Mapping[str, int]


def compute_amounts(sample: HostSample, reserve: HostReserve) -> tuple[Amount, ...]:
    """Convert ``sample`` to offered amounts, subtracting ``reserve`` and flooring at 0."""
    idle_cores = sample.cpu_count * (1 - sample.cpu_percent / 100)
    amounts = [
        Amount("cpu_free", _round(idle_cores - reserve.cores), "cores"),
        Amount(
            "memory_free", _round(sample.memory_available_bytes / GIB - reserve.memory_gib), "GiB"
        ),
    ]
    for mount, free_bytes in sample.disk_free_bytes.items():
        free_gib = free_bytes / GIB - reserve.disk_gib
        amounts.append(Amount("disk_free", _round(free_gib), "GiB", label=mount))
    return tuple(amounts)


def _round(value: float) -> float:
    return round(max(value, 0.0), 2)


class HostAdapter(Adapter[HostSettings]):
    """Report the free CPU, memory and disk of this host as IT capacity."""

    settings_model = HostSettings

    def __init__(self, name: str, settings: HostSettings, context: AdapterContext) -> None:
        super().__init__(name, settings, context)
        self.mounts: tuple[str, ...] = ()
        self._sample: HostSample | None = None
        self._failing_mounts: set[str] = set()
        self._sampling_failed = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.mounts = self._existing_mounts()
        self._sample = await asyncio.to_thread(self._read_sample, CPU_FIRST_SAMPLE_SECONDS)
        self._task = asyncio.create_task(self._sample_forever(), name=f"host adapter {self.name}")

    def collect(self) -> list[Observation]:
        if self._sample is None:
            return []
        amounts = compute_amounts(self._sample, self.settings.reserve)
        return [
            ResourceAmounts(
                resource=self.settings.resource,
                kind=ResourceKind.IT_CAPACITY,
                amounts=amounts,
                name=self.settings.display_name,
            )
        ]

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    def _existing_mounts(self) -> tuple[str, ...]:
        existing = []
        for mount in self.settings.mounts:
            if Path(mount).exists():
                existing.append(mount)
                continue
            error = AdapterSettingsError(
                f"adapter {self.name!r}: mount {mount!r} in 'mounts' does not exist; "
                "fix the path or remove it. Its disk space is not reported."
            )
            logger.error("%s", error)
        return tuple(existing)

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.sample_interval_seconds)
            try:
                self._sample = await asyncio.to_thread(self._read_sample, None)
            except (OSError, psutil.Error) as error:
                # The last good sample stays in use; the next interval tries again.
                if not self._sampling_failed:
                    self._sampling_failed = True
                    logger.error(
                        "adapter %r: reading host resources failed: %s; retrying every %s s",
                        self.name,
                        error,
                        self.settings.sample_interval_seconds,
                    )
                continue
            if self._sampling_failed:
                self._sampling_failed = False
                logger.info("adapter %r: reading host resources works again", self.name)

    def _read_sample(self, cpu_interval: float | None) -> HostSample:
        """Read psutil; blocks for ``cpu_interval`` seconds when it is set, so run it in a thread.

        With ``cpu_interval=None`` the CPU load covers the time since the previous call of
        ``psutil.cpu_percent`` anywhere in this process.
        """
        cpu_percent = psutil.cpu_percent(interval=cpu_interval)
        cpu_count = psutil.cpu_count(logical=True) or 1
        memory = psutil.virtual_memory()
        disk_free = {}
        for mount in self.mounts:
            free = self._read_disk_free(mount)
            if free is not None:
                disk_free[mount] = free
        return HostSample(cpu_count, cpu_percent, memory.available, disk_free)

    def _read_disk_free(self, mount: str) -> int | None:
        """Return the free bytes on ``mount``; log once when it fails and once when it is back."""
        try:
            free = psutil.disk_usage(mount).free
        except OSError as error:
            if mount not in self._failing_mounts:
                self._failing_mounts.add(mount)
                logger.error(
                    "adapter %r: reading free disk of mount %r failed: %s; "
                    "it is left out until it can be read again",
                    self.name,
                    mount,
                    error,
                )
            return None
        if mount in self._failing_mounts:
            self._failing_mounts.discard(mount)
            logger.info("adapter %r: mount %r can be read again", self.name, mount)
        return free
