"""The ``host`` adapter: free CPU, memory and disk of the machine the agent runs on.

Every ``sample_interval_seconds`` the adapter measures the free cores and available memory (see
``adapters.host.sampler``) and the free space of each mount (see ``adapters.host.probe``).
``collect()`` returns one ``ResourceAmounts`` of kind ``it_capacity`` with these amounts:

- ``cpu_free``: the mean of the free logical cores over the last ``window_seconds``, minus the
  reserve;
- ``memory_free``: the mean of the available memory in GiB over the same window, minus the
  reserve;
- ``disk_free``: free disk in GiB minus the reserve, one amount per mount, labelled with the
  mount, from the latest read of that mount.

No amount goes below 0. Until the window has filled, the means cover the samples there are. A
mount that fails or times out is left out until it can be read again. A configured mount that
does not exist at start is logged as an error and skipped, so one wrong path does not stop the
agent from offering the rest.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import psutil

from adapters.base import (
    Adapter,
    AdapterContext,
    Observation,
    ResourceAmounts,
    SourceHealth,
    cancel_task,
)
from adapters.host.cgroups import CgroupReader
from adapters.host.mounts import MountReading, read_mount
from adapters.host.probe import MountProbe
from adapters.host.sampler import GIB, HeadroomSampler, SystemSampler
from adapters.host.settings import HostReserve, HostSettings
from adapters.host.window import HeadroomWindow
from kooperant.protocol import Amount, ResourceKind

logger = logging.getLogger(__name__)

# CPU load is measured between two samples, so start() waits this long for its first sample.
CPU_FIRST_SAMPLE_SECONDS = 0.2
# start() waits at most this long for the first read of the mounts. A slower mount is read on
# in the background, so a hung network share does not hold up the agent's start.
START_MOUNT_WAIT_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class HostSample:
    """The host's free cores, available memory and free disk per mount, before the reserve."""

    cpu_free_cores: float
    memory_available_bytes: float
    disk_free_bytes: Mapping[str, int]


def compute_amounts(sample: HostSample, reserve: HostReserve) -> tuple[Amount, ...]:
    """Convert ``sample`` to offered amounts, subtracting ``reserve`` and flooring at 0."""
    amounts = [
        Amount("cpu_free", _round(sample.cpu_free_cores - reserve.cores), "cores"),
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
    """Report the free CPU, memory and disk of this host as IT capacity.

    ``sampler`` and ``read_mount`` replace the measurements of this machine, for tests.
    """

    settings_model = HostSettings

    def __init__(
        self,
        name: str,
        settings: HostSettings,
        context: AdapterContext,
        *,
        sampler: HeadroomSampler | None = None,
        read_mount: Callable[[str], MountReading] = read_mount,
    ) -> None:
        super().__init__(name, settings, context)
        if sampler is None:
            cgroup_root = self.resolve_path(settings.cgroup_root)
            cgroups = CgroupReader(cgroup_root) if settings.cgroup == "auto" else None
            sampler = SystemSampler(name, cgroups)
        self._sampler = sampler
        self._window = HeadroomWindow(settings.window_seconds, settings.sample_interval_seconds)
        self._probes = tuple(
            MountProbe(
                name,
                mount,
                timeout_seconds=settings.mount_timeout_seconds,
                read_mount=read_mount,
                clock=context.clock,
            )
            for mount in settings.mounts
        )
        self._disk_free: dict[str, int] = {}
        self._sampling_failed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def mounts(self) -> tuple[str, ...]:
        """The configured mounts that existed at start, in the order of the settings."""
        return tuple(probe.path for probe in self._probes if not probe.skipped)

    async def start(self) -> None:
        first_mounts = asyncio.create_task(self._read_mounts(first=True))
        # stop() cancels the first reads too when start() is interrupted before the loop starts.
        self._task = first_mounts
        await self._read_headroom()
        await asyncio.sleep(CPU_FIRST_SAMPLE_SECONDS)
        await self._read_headroom()
        await asyncio.wait({first_mounts}, timeout=START_MOUNT_WAIT_SECONDS)
        self._task = asyncio.create_task(
            self._sample_forever(first_mounts), name=f"host adapter {self.name}"
        )

    def collect(self) -> list[Observation]:
        headroom = self._window.mean(self.context.clock())
        if headroom is None:
            return []
        sample = HostSample(
            headroom.cpu_free_cores, headroom.memory_available_bytes, dict(self._disk_free)
        )
        return [
            ResourceAmounts(
                resource=self.settings.resource,
                kind=ResourceKind.IT_CAPACITY,
                amounts=compute_amounts(sample, self.settings.reserve),
                name=self.settings.display_name,
            )
        ]

    def health(self) -> list[SourceHealth]:
        return [probe.health() for probe in self._probes]

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_task(task)

    async def sample(self) -> None:
        """Take one sample of CPU, memory and every mount; the background task calls it."""
        await asyncio.gather(self._read_headroom(), self._read_mounts())

    async def _sample_forever(self, first_mounts: asyncio.Task[None]) -> None:
        await first_mounts
        while True:
            await asyncio.sleep(self.settings.sample_interval_seconds)
            await self.sample()

    async def _read_mounts(self, *, first: bool = False) -> None:
        readings = await asyncio.gather(*(probe.read(first=first) for probe in self._probes))
        # Rebuilt in the order of the settings, so the amounts keep that order.
        disk_free = {}
        for probe, reading in zip(self._probes, readings, strict=True):
            if reading is not None:
                disk_free[probe.path] = reading.free_bytes
        self._disk_free = disk_free

    async def _read_headroom(self) -> None:
        try:
            headroom = await asyncio.to_thread(self._sampler.read)
        except (OSError, psutil.Error) as error:
            # The samples in the window stay in use until they are older than the window.
            if not self._sampling_failed:
                self._sampling_failed = True
                logger.error(
                    "adapter %r: reading host resources failed: %s; retrying every %s s",
                    self.name,
                    error,
                    self.settings.sample_interval_seconds,
                )
            return
        if self._sampling_failed:
            self._sampling_failed = False
            logger.info("adapter %r: reading host resources works again", self.name)
        if headroom is not None:
            self._window.add(self.context.clock(), headroom)
