"""Tests of the cgroup limits the host adapter reads, on fake cgroup trees and on this machine."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adapters.errors import ExportFormatError
from adapters.host.cgroups import CgroupReader, CgroupVersion, CpuLimit, MemoryLimit
from adapters.host.sampler import HostFigures, SystemSampler

GIB = 1024**3
HOST_CORES = 8
HOST_MEMORY = 16 * GIB


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="ascii")
    return root


def v2_tree(root: Path, **overrides: str) -> Path:
    files = {
        "cgroup.controllers": "cpuset cpu io memory pids\n",
        "cpu.max": "200000 100000\n",
        "cpu.stat": "usage_usec 5000000\nuser_usec 4000000\nsystem_usec 1000000\n",
        "memory.max": f"{4 * GIB}\n",
        "memory.current": f"{3 * GIB}\n",
        "memory.stat": f"anon {2 * GIB}\nfile {GIB}\ninactive_file {GIB // 2}\n",
    }
    files.update({name.replace("__", "."): text for name, text in overrides.items()})
    return write_files(root, files)


def v1_tree(root: Path) -> Path:
    return write_files(
        root,
        {
            "cpu/cpu.cfs_quota_us": "150000\n",
            "cpu/cpu.cfs_period_us": "100000\n",
            "cpuacct/cpuacct.usage": "2500000000\n",
            "memory/memory.limit_in_bytes": f"{2 * GIB}\n",
            "memory/memory.usage_in_bytes": f"{GIB}\n",
            "memory/memory.stat": f"cache {GIB}\ninactive_file 1\ntotal_inactive_file {GIB // 4}\n",
        },
    )


def test_cgroup_v2_limits_read(tmp_path: Path) -> None:
    reader = CgroupReader(v2_tree(tmp_path))

    assert reader.version() is CgroupVersion.V2
    assert reader.read_cpu() == CpuLimit(cores=2.0, usage_seconds=5.0)
    assert reader.read_memory() == MemoryLimit(limit_bytes=4 * GIB, used_bytes=3 * GIB - GIB // 2)


def test_cgroup_v1_limits_read(tmp_path: Path) -> None:
    reader = CgroupReader(v1_tree(tmp_path))

    assert reader.version() is CgroupVersion.V1
    assert reader.read_cpu() == CpuLimit(cores=1.5, usage_seconds=2.5)
    assert reader.read_memory() == MemoryLimit(limit_bytes=2 * GIB, used_bytes=GIB - GIB // 4)


def test_cgroup_v1_combined_cpu_folder(tmp_path: Path) -> None:
    write_files(
        tmp_path,
        {
            "cpu,cpuacct/cpu.cfs_quota_us": "50000\n",
            "cpu,cpuacct/cpu.cfs_period_us": "100000\n",
            "cpu,cpuacct/cpuacct.usage": "1000000000\n",
        },
    )

    assert CgroupReader(tmp_path).read_cpu() == CpuLimit(cores=0.5, usage_seconds=1.0)


def test_cgroup_v2_max_means_no_limit(tmp_path: Path) -> None:
    reader = CgroupReader(v2_tree(tmp_path, cpu__max="max 100000\n", memory__max="max\n"))

    assert reader.read_cpu() is None
    assert reader.read_memory() is None


def test_cgroup_v1_unlimited_values_no_limit(tmp_path: Path) -> None:
    v1_tree(tmp_path)
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("-1\n", encoding="ascii")
    unlimited = "9223372036854771712\n"
    (tmp_path / "memory" / "memory.limit_in_bytes").write_text(unlimited, encoding="ascii")

    assert CgroupReader(tmp_path).read_cpu() is None
    assert CgroupReader(tmp_path).read_memory() is None


def test_cgroup_missing_files_no_limit(tmp_path: Path) -> None:
    write_files(tmp_path, {"cgroup.controllers": "cpu memory\n"})
    empty = tmp_path / "nothing-mounted"

    assert CgroupReader(tmp_path).read_cpu() is None
    assert CgroupReader(tmp_path).read_memory() is None
    assert CgroupReader(empty).version() is None
    assert CgroupReader(empty).read_cpu() is None
    assert CgroupReader(empty).read_memory() is None


def test_cgroup_v2_without_memory_stat(tmp_path: Path) -> None:
    v2_tree(tmp_path)
    (tmp_path / "memory.stat").unlink()

    assert CgroupReader(tmp_path).read_memory() == MemoryLimit(4 * GIB, 3 * GIB)


@pytest.mark.parametrize(
    ("file", "text", "line", "expected"),
    [
        ("cpu.max", "two 100000\n", 1, "expected a quota in µs above 0 or 'max', found 'two'"),
        ("cpu.max", "200000\n", 1, "expected 'QUOTA PERIOD' or 'max PERIOD', found '200000'"),
        ("cpu.max", "200000 0\n", 1, "expected a period in µs above 0, found '0'"),
        ("cpu.stat", "user_usec 1\nusage_usec lots\n", 2, "an integer after 'usage_usec'"),
        ("memory.max", "4G\n", 1, "expected a limit in bytes or 'max', found '4G'"),
        ("memory.max", "-5\n", 1, "expected a limit in bytes or 'max', found '-5'"),
        ("memory.current", "\n", 1, "expected bytes in use, found ''"),
        ("memory.stat", "inactive_file x\n", 1, "expected an integer after 'inactive_file'"),
    ],
)
def test_cgroup_v2_garbage_names_file(
    tmp_path: Path, file: str, text: str, line: int, expected: str
) -> None:
    v2_tree(tmp_path)
    (tmp_path / file).write_text(text, encoding="ascii")
    reader = CgroupReader(tmp_path)
    read = reader.read_memory if file.startswith("memory") else reader.read_cpu

    with pytest.raises(ExportFormatError) as raised:
        read()

    assert raised.value.path == tmp_path / file
    assert raised.value.line == line
    assert expected in str(raised.value)
    assert str(tmp_path / file) in str(raised.value)


@pytest.mark.parametrize(
    ("file", "text", "expected"),
    [
        ("cpu/cpu.cfs_quota_us", "0\n", "a quota in µs above 0, or -1 for no limit, found '0'"),
        ("cpu/cpu.cfs_quota_us", "-2\n", "a quota in µs above 0, or -1 for no limit, found '-2'"),
        ("cpu/cpu.cfs_period_us", "abc\n", "expected a period in µs above 0, found 'abc'"),
        ("cpuacct/cpuacct.usage", "1.5\n", "expected CPU time in ns, found '1.5'"),
        ("memory/memory.limit_in_bytes", "unlimited\n", "expected a limit in bytes"),
        ("memory/memory.usage_in_bytes", "many\n", "expected bytes in use, found 'many'"),
    ],
)
def test_cgroup_v1_garbage_names_file(tmp_path: Path, file: str, text: str, expected: str) -> None:
    v1_tree(tmp_path)
    (tmp_path / file).write_text(text, encoding="ascii")
    reader = CgroupReader(tmp_path)
    read = reader.read_memory if file.startswith("memory") else reader.read_cpu

    with pytest.raises(ExportFormatError) as raised:
        read()

    assert raised.value.path == tmp_path / file
    assert expected in str(raised.value)


def test_cgroup_usage_missing_under_limit(tmp_path: Path) -> None:
    v2_tree(tmp_path)
    (tmp_path / "cpu.stat").unlink()
    (tmp_path / "memory.current").unlink()
    reader = CgroupReader(tmp_path)

    with pytest.raises(ExportFormatError, match=r"cpu\.stat: not found"):
        reader.read_cpu()
    with pytest.raises(ExportFormatError, match=r"memory\.current: not found"):
        reader.read_memory()


def test_cgroup_stat_without_usage_line(tmp_path: Path) -> None:
    v2_tree(tmp_path, cpu__stat="user_usec 1\n")

    with pytest.raises(ExportFormatError, match="the line 'usage_usec' is missing"):
        CgroupReader(tmp_path).read_cpu()


def test_cgroup_real_machine_reads() -> None:
    reader = CgroupReader(Path("/sys/fs/cgroup"))

    version = reader.version()
    cpu = reader.read_cpu()
    memory = reader.read_memory()

    assert version in (None, CgroupVersion.V1, CgroupVersion.V2)
    if cpu is not None:
        assert cpu.cores > 0
        assert cpu.usage_seconds >= 0
    if memory is not None:
        assert memory.limit_bytes >= 0
        assert memory.used_bytes >= 0


class FakeHost:
    """Host figures whose CPU counters advance by what the test sets, with a fake clock."""

    def __init__(self) -> None:
        self.busy = 0.0
        self.total = 0.0
        self.now = 100.0

    def advance(self, seconds: float, busy_cores: float) -> None:
        self.now += seconds
        self.total += seconds * HOST_CORES
        self.busy += seconds * busy_cores

    def figures(self) -> HostFigures:
        return HostFigures(HOST_CORES, self.busy, self.total, HOST_MEMORY)


def make_sampler(root: Path | None, host: FakeHost) -> SystemSampler:
    reader = None if root is None else CgroupReader(root)
    return SystemSampler("host-test", reader, read_host=host.figures, monotonic=lambda: host.now)


def set_usage_usec(root: Path, usec: int) -> None:
    (root / "cpu.stat").write_text(f"usage_usec {usec}\n", encoding="ascii")


def test_sampler_without_cgroup_host_figures() -> None:
    host = FakeHost()
    sampler = make_sampler(None, host)

    assert sampler.read() is None
    host.advance(10, busy_cores=2.0)
    headroom = sampler.read()

    assert headroom is not None
    assert headroom.cpu_free_cores == pytest.approx(6.0)
    assert headroom.memory_available_bytes == HOST_MEMORY


def test_sampler_cgroup_v2_bounds_headroom(tmp_path: Path) -> None:
    host = FakeHost()
    sampler = make_sampler(v2_tree(tmp_path), host)
    set_usage_usec(tmp_path, 1_000_000)

    sampler.read()
    host.advance(10, busy_cores=3.0)
    set_usage_usec(tmp_path, 6_000_000)  # 5 s of CPU in 10 s: half a core used
    headroom = sampler.read()

    assert headroom is not None
    assert headroom.cpu_free_cores == pytest.approx(2.0 - 0.5)
    assert headroom.memory_available_bytes == 4 * GIB - (3 * GIB - GIB // 2)


def test_sampler_cgroup_v1_bounds_headroom(tmp_path: Path) -> None:
    host = FakeHost()
    sampler = make_sampler(v1_tree(tmp_path), host)

    sampler.read()
    host.advance(4, busy_cores=1.0)
    (tmp_path / "cpuacct" / "cpuacct.usage").write_text("6500000000\n", encoding="ascii")
    headroom = sampler.read()

    assert headroom is not None
    assert headroom.cpu_free_cores == pytest.approx(1.5 - 1.0)
    assert headroom.memory_available_bytes == 2 * GIB - (GIB - GIB // 4)


def test_sampler_busy_host_below_cgroup_limit(tmp_path: Path) -> None:
    host = FakeHost()
    sampler = make_sampler(v2_tree(tmp_path), host)

    sampler.read()
    host.advance(10, busy_cores=7.5)  # the host's other work leaves half a core
    headroom = sampler.read()

    assert headroom is not None
    assert headroom.cpu_free_cores == pytest.approx(0.5)


def test_sampler_cgroup_max_uses_host(tmp_path: Path) -> None:
    host = FakeHost()
    root = v2_tree(tmp_path, cpu__max="max 100000\n", memory__max="max\n")
    sampler = make_sampler(root, host)

    sampler.read()
    host.advance(10, busy_cores=1.0)
    headroom = sampler.read()

    assert headroom is not None
    assert headroom.cpu_free_cores == pytest.approx(7.0)
    assert headroom.memory_available_bytes == HOST_MEMORY


def test_sampler_garbage_falls_back_logged_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    host = FakeHost()
    root = v2_tree(tmp_path, memory__max="lots\n")
    sampler = make_sampler(root, host)

    with caplog.at_level(logging.INFO, logger="adapters.host"):
        sampler.read()
        for _ in range(3):
            host.advance(5, busy_cores=0.0)
            headroom = sampler.read()
            assert headroom is not None
            assert headroom.memory_available_bytes == HOST_MEMORY
        (root / "memory.max").write_text(f"{GIB}\n", encoding="ascii")
        host.advance(5, busy_cores=0.0)
        recovered = sampler.read()

    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    infos = [record.getMessage() for record in caplog.records if "read again" in record.message]
    assert len(errors) == 1
    assert str(root / "memory.max") in errors[0]
    assert "'lots'" in errors[0]
    assert "host's figures" in errors[0]
    assert len(infos) == 1
    assert recovered is not None
    assert recovered.memory_available_bytes == 0.0  # 1 GiB limit, 2.5 GiB in use
