"""Samples of the free CPU cores and available memory, bounded by the container's cgroup limits.

Free cores are the host's idle cores, measured from ``psutil.cpu_times()`` between two samples.
Under a cgroup CPU limit they are at most the limit minus the cores the cgroup used in that time.
Available memory is psutil's ``available``, and under a memory limit at most the limit minus
the memory in use. A cgroup file that cannot be used is logged once, and the host's figures
apply until it can be read again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

import psutil

from adapters.errors import ExportFormatError
from adapters.host.cgroups import CgroupReader, CpuLimit, MemoryLimit
from adapters.host.window import Headroom

logger = logging.getLogger(__name__)

GIB = 1024**3

LimitT = TypeVar("LimitT", CpuLimit, MemoryLimit)


class HeadroomSampler(Protocol):
    """Something that measures free cores and available memory; blocking, so run in a thread."""

    def read(self) -> Headroom | None:
        """Return the headroom since the previous call, ``None`` on the first call."""


@dataclass(frozen=True, slots=True)
class HostFigures:
    """The host's CPU counters and available memory, as psutil reports them."""

    cpu_count: int
    cpu_busy_seconds: float
    cpu_total_seconds: float
    memory_available_bytes: int


def read_host_figures() -> HostFigures:
    """Read the host's logical cores, cumulative CPU times and available memory from psutil."""
    times = psutil.cpu_times()
    total = sum(times)
    # Linux counts guest time in user and nice time too, so it is taken out of the total to
    # count it once. psutil 7.2's cpu_percent computes busy and total time the same way.
    total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return HostFigures(
        cpu_count=psutil.cpu_count(logical=True) or 1,
        cpu_busy_seconds=total - idle,
        cpu_total_seconds=total,
        memory_available_bytes=psutil.virtual_memory().available,
    )


@dataclass(frozen=True, slots=True)
class _CpuCounters:
    host: HostFigures
    cgroup_usage_seconds: float | None
    monotonic: float


class SystemSampler:
    """Measure this machine's headroom, bounded by the limits of ``cgroups`` when it is set."""

    def __init__(
        self,
        adapter_name: str,
        cgroups: CgroupReader | None,
        *,
        read_host: Callable[[], HostFigures] = read_host_figures,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._adapter_name = adapter_name
        self._cgroups = cgroups
        self._read_host = read_host
        self._monotonic = monotonic
        self._previous: _CpuCounters | None = None
        self._failing: dict[str, str] = {}

    def read(self) -> Headroom | None:
        """Return the free cores since the previous call and the available memory now."""
        host = self._read_host()
        cpu_limit = self._read_limit("CPU", self._cgroups.read_cpu) if self._cgroups else None
        memory_limit = (
            self._read_limit("memory", self._cgroups.read_memory) if self._cgroups else None
        )
        usage = None if cpu_limit is None else cpu_limit.usage_seconds
        counters = _CpuCounters(host, usage, self._monotonic())

        previous, self._previous = self._previous, counters
        if previous is None:
            self._log_limits(cpu_limit, memory_limit)
            return None

        cores = _free_cores(previous, counters, cpu_limit)
        memory = float(host.memory_available_bytes)
        if memory_limit is not None:
            memory = min(memory, memory_limit.limit_bytes - memory_limit.used_bytes)
        return Headroom(cpu_free_cores=max(cores, 0.0), memory_available_bytes=max(memory, 0.0))

    def _read_limit(self, resource: str, read: Callable[[], LimitT | None]) -> LimitT | None:
        """Call ``read``, logging a failure once and the recovery once; ``None`` on failure."""
        try:
            limit = read()
        except ExportFormatError as error:
            if self._failing.get(resource) != str(error):
                self._failing[resource] = str(error)
                logger.error(
                    "adapter %r: the cgroup %s limit cannot be used: %s; the host's figures "
                    "apply until the file can be read",
                    self._adapter_name,
                    resource,
                    error,
                )
            return None
        if self._failing.pop(resource, None) is not None:
            logger.info(
                "adapter %r: the cgroup %s limit can be read again", self._adapter_name, resource
            )
        return limit

    def _log_limits(self, cpu: CpuLimit | None, memory: MemoryLimit | None) -> None:
        if self._cgroups is None or (cpu is None and memory is None):
            return
        logger.info(
            "adapter %r: cgroup limits under %s apply: CPU %s, memory %s",
            self._adapter_name,
            self._cgroups.root,
            "none" if cpu is None else f"{cpu.cores:g} cores",
            "none" if memory is None else f"{memory.limit_bytes / GIB:.2f} GiB",
        )


def _free_cores(previous: _CpuCounters, current: _CpuCounters, limit: CpuLimit | None) -> float:
    host_busy = current.host.cpu_busy_seconds - previous.host.cpu_busy_seconds
    host_total = current.host.cpu_total_seconds - previous.host.cpu_total_seconds
    busy_fraction = min(max(host_busy / host_total, 0.0), 1.0) if host_total > 0 else 0.0
    free = current.host.cpu_count * (1 - busy_fraction)

    elapsed = current.monotonic - previous.monotonic
    if limit is None or previous.cgroup_usage_seconds is None or elapsed <= 0:
        return free
    used_cores = (limit.usage_seconds - previous.cgroup_usage_seconds) / elapsed
    return min(free, limit.cores - used_cores)
