"""CPU and memory limits of the container the agent runs in, read from its cgroup files.

Inside a container psutil still reports the host's cores and memory, but the kernel keeps the
container's processes within the limits of its cgroup. Files read, under the cgroup root:

- cgroup v2 (``cgroup.controllers`` present): ``cpu.max`` ("QUOTA PERIOD" in µs, or "max PERIOD"),
  ``cpu.stat`` (``usage_usec``), ``memory.max`` (bytes or "max"), ``memory.current`` and
  ``memory.stat`` (``inactive_file``);
- cgroup v1: ``cpu/cpu.cfs_quota_us`` (-1 for no limit) and ``cpu/cpu.cfs_period_us``,
  ``cpuacct/cpuacct.usage`` (ns), ``memory/memory.limit_in_bytes``,
  ``memory/memory.usage_in_bytes`` and ``memory/memory.stat`` (``total_inactive_file``).

Memory in use is the usage minus the inactive file cache, because the kernel reclaims that cache
before it hits the limit. A missing limit file or a limit of "max" or -1 means no limit. A file
with content other than the kernel writes raises ``ExportFormatError`` with its path, line and
value.

NOTE: the files are read directly under the root. In a container that is its own cgroup (cgroup
namespaces, or the bind mounts of Docker on cgroup v1); on a host, limits set on the agent's own
systemd slice are not read.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from adapters.errors import ExportFormatError

NO_LIMIT_V2 = "max"
NO_LIMIT_V1 = -1
# Docker and systemd mount the cpu and cpuacct controllers together, under one of the joint
# names, and often link the single names to it.
# cgroup v1 writes no "max": an unlimited memory.limit_in_bytes is the largest page-aligned
# signed 64-bit number (9223372036854771712 with 4 KiB pages). Anything from 2**62 bytes (4 EiB)
# on is taken as no limit.
V1_NO_LIMIT_BYTES = 2**62
V1_CPU_FOLDERS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")
V1_CPUACCT_FOLDERS = ("cpuacct", "cpu,cpuacct", "cpuacct,cpu")


class CgroupVersion(StrEnum):
    """The cgroup hierarchy found under the root."""

    V1 = "v1"
    V2 = "v2"


@dataclass(frozen=True, slots=True)
class CpuLimit:
    """A CPU limit in logical cores and the CPU time the cgroup has used since it was made."""

    cores: float
    usage_seconds: float


@dataclass(frozen=True, slots=True)
class MemoryLimit:
    """A memory limit and the memory in use without the inactive file cache, in bytes."""

    limit_bytes: int
    used_bytes: int


class CgroupReader:
    """Read the limits and usage of the cgroup mounted at ``root``; every call reads the files."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def version(self) -> CgroupVersion | None:
        """Return the hierarchy under the root, ``None`` when there is no cgroup file system."""
        if (self.root / "cgroup.controllers").is_file():
            return CgroupVersion.V2
        if any((self.root / name).is_dir() for name in (*V1_CPU_FOLDERS, "cpuacct", "memory")):
            return CgroupVersion.V1
        return None

    def read_cpu(self) -> CpuLimit | None:
        """Return the CPU limit with the usage, or ``None`` when the cgroup has no CPU limit."""
        version = self.version()
        if version is CgroupVersion.V2:
            return self._read_cpu_v2()
        if version is CgroupVersion.V1:
            return self._read_cpu_v1()
        return None

    def read_memory(self) -> MemoryLimit | None:
        """Return the memory limit with the usage, or ``None`` when the cgroup has no limit."""
        version = self.version()
        if version is CgroupVersion.V2:
            return self._read_memory_v2()
        if version is CgroupVersion.V1:
            return self._read_memory_v1()
        return None

    def _read_cpu_v2(self) -> CpuLimit | None:
        path = self.root / "cpu.max"
        text = _read_optional(path)
        if text is None:
            return None
        fields = text.split()
        if len(fields) != 2:
            raise _format_error(path, 1, "'QUOTA PERIOD' or 'max PERIOD'", text)
        period = _parse_positive(path, 1, fields[1], "a period in µs above 0")
        if fields[0] == NO_LIMIT_V2:
            return None
        quota = _parse_positive(path, 1, fields[0], "a quota in µs above 0 or 'max'")

        stat_path = self.root / "cpu.stat"
        usage_usec = _read_stat_value(stat_path, ("usage_usec",), required=True)
        return CpuLimit(cores=quota / period, usage_seconds=usage_usec / 1e6)

    def _read_cpu_v1(self) -> CpuLimit | None:
        cpu_dir = self._v1_dir(V1_CPU_FOLDERS)
        quota_path = cpu_dir / "cpu.cfs_quota_us"
        text = _read_optional(quota_path)
        if text is None:
            return None
        expected = "a quota in µs above 0, or -1 for no limit"
        quota = _parse_int(quota_path, 1, text, expected, minimum=NO_LIMIT_V1)
        if quota == NO_LIMIT_V1:
            return None
        if quota == 0:
            raise _format_error(quota_path, 1, expected, text)
        period_path = cpu_dir / "cpu.cfs_period_us"
        period = _parse_positive(
            period_path, 1, _read_required(period_path), "a period in µs above 0"
        )

        usage_dir = self._v1_dir(V1_CPUACCT_FOLDERS)
        usage_path = usage_dir / "cpuacct.usage"
        usage_ns = _parse_int(usage_path, 1, _read_required(usage_path), "CPU time in ns")
        return CpuLimit(cores=quota / period, usage_seconds=usage_ns / 1e9)

    def _read_memory_v2(self) -> MemoryLimit | None:
        path = self.root / "memory.max"
        text = _read_optional(path)
        if text is None or text.strip() == NO_LIMIT_V2:
            return None
        limit = _parse_int(path, 1, text, "a limit in bytes or 'max'")
        current_path = self.root / "memory.current"
        current = _parse_int(current_path, 1, _read_required(current_path), "bytes in use")
        cache = _read_stat_value(self.root / "memory.stat", ("inactive_file",), required=False)
        return MemoryLimit(limit_bytes=limit, used_bytes=max(current - cache, 0))

    def _read_memory_v1(self) -> MemoryLimit | None:
        memory_dir = self.root / "memory"
        path = memory_dir / "memory.limit_in_bytes"
        text = _read_optional(path)
        if text is None:
            return None
        limit = _parse_int(path, 1, text, "a limit in bytes")
        if limit >= V1_NO_LIMIT_BYTES:
            return None
        usage_path = memory_dir / "memory.usage_in_bytes"
        usage = _parse_int(usage_path, 1, _read_required(usage_path), "bytes in use")
        cache = _read_stat_value(
            memory_dir / "memory.stat", ("total_inactive_file", "inactive_file"), required=False
        )
        return MemoryLimit(limit_bytes=limit, used_bytes=max(usage - cache, 0))

    def _v1_dir(self, names: tuple[str, ...]) -> Path:
        """Return the first of the controller folders ``names`` that exists."""
        for name in names:
            if (self.root / name).is_dir():
                return self.root / name
        return self.root / names[0]


def _read_optional(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as error:
        raise ExportFormatError(path, f"cannot be read: {error}") from error


def _read_required(path: Path) -> str:
    text = _read_optional(path)
    if text is None:
        raise ExportFormatError(path, "not found, but the cgroup sets a limit that needs it")
    return text


def _read_stat_value(path: Path, keys: tuple[str, ...], *, required: bool) -> int:
    """Return the first of ``keys`` in a ``KEY VALUE`` file; 0 when it is absent and optional."""
    text = _read_required(path) if required else _read_optional(path)
    values: dict[str, tuple[int, str]] = {}
    for number, line in enumerate((text or "").splitlines(), start=1):
        key, _, value = line.partition(" ")
        values[key] = (number, value)
    for key in keys:
        if key in values:
            number, value = values[key]
            return _parse_int(path, number, value, f"an integer after {key!r}")
    if required:
        raise ExportFormatError(path, f"the line {keys[0]!r} is missing")
    return 0


def _parse_int(path: Path, line: int, text: str, expected: str, *, minimum: int = 0) -> int:
    """Parse a decimal integer of at least ``minimum``; ``expected`` describes it in the error."""
    try:
        value = int(text.strip())
    except ValueError:
        raise _format_error(path, line, expected, text) from None
    if value < minimum:
        raise _format_error(path, line, expected, text)
    return value


def _parse_positive(path: Path, line: int, text: str, expected: str) -> int:
    return _parse_int(path, line, text, expected, minimum=1)


def _format_error(path: Path, line: int, expected: str, text: str) -> ExportFormatError:
    return ExportFormatError(path, f"expected {expected}, found {text.strip()!r}", line=line)
