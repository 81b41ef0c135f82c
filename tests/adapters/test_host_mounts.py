"""Tests of how the host adapter reads a mount: file system type, time limit and health."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from adapters.base import ConnectionState
from adapters.host.mounts import MountReading, MountType, describe_mount, read_mount
from adapters.host.probe import MountProbe


@dataclass(frozen=True)
class sdiskpart:  # named as the entries of psutil.disk_partitions()
    device: str
    mountpoint: str
    fstype: str
    opts: str


LINUX_PARTITIONS = [
    sdiskpart("/dev/vda", "/", "ext4", "rw,relatime"),
    sdiskpart("tmpfs", "/dev/shm", "tmpfs", "rw"),
    sdiskpart("nas:/export/data", "/srv/data", "nfs4", "rw,vers=4.2"),
    sdiskpart("//files/scans", "/srv/data/scans", "cifs", "rw"),
    sdiskpart("/dev/vdb", "/srv/database", "xfs", "rw"),
]
WINDOWS_PARTITIONS = [
    sdiskpart("C:\\", "C:\\", "NTFS", "rw,fixed"),
    sdiskpart("Z:\\", "Z:\\", "NTFS", "rw,remote"),
]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", MountType("ext4", "/", network=False)),
        ("/home/owner", MountType("ext4", "/", network=False)),
        ("/srv/data", MountType("nfs4", "/srv/data", network=True)),
        ("/srv/data/projects/2026", MountType("nfs4", "/srv/data", network=True)),
        ("/srv/data/scans/in", MountType("cifs", "/srv/data/scans", network=True)),
        ("/srv/database", MountType("xfs", "/srv/database", network=False)),
        ("/srv/datastore", MountType("ext4", "/", network=False)),
    ],
)
def test_describe_mount_linux_longest_prefix(path: str, expected: MountType) -> None:
    assert describe_mount(path, LINUX_PARTITIONS, windows=False) == expected


def test_describe_mount_later_mount_hides_earlier() -> None:
    stacked = [*LINUX_PARTITIONS, sdiskpart("tmpfs", "/srv/data", "tmpfs", "rw")]

    described = describe_mount("/srv/data/file", stacked, windows=False)

    assert described == MountType("tmpfs", "/srv/data", network=False)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("C:\\", MountType("NTFS", "C:\\", network=False)),
        ("c:\\Users\\owner", MountType("NTFS", "C:\\", network=False)),
        ("Z:\\projekty", MountType("NTFS", "Z:\\", network=True)),
        ("\\\\nas\\skany", MountType("unknown", "\\\\nas\\skany", network=True)),
        ("\\\\nas\\skany\\2026", MountType("unknown", "\\\\nas\\skany", network=True)),
    ],
)
def test_describe_mount_windows_drives_and_unc(path: str, expected: MountType) -> None:
    assert describe_mount(path, WINDOWS_PARTITIONS, windows=True) == expected


def findmnt(path: Path) -> tuple[str, str]:
    output = subprocess.run(
        ["findmnt", "--noheadings", "--output", "FSTYPE,TARGET", "--target", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # A mount stacked on another at the same place is listed after it; the last one is in use.
    fstype, target = output.splitlines()[-1].split()
    return fstype, target


@pytest.mark.skipif(shutil.which("findmnt") is None, reason="findmnt (util-linux) is missing")
@pytest.mark.parametrize("base", ["tmp", "shm"])
def test_read_mount_matches_findmnt(tmp_path: Path, base: str) -> None:
    root = tmp_path if base == "tmp" else Path("/dev/shm")
    if not root.is_dir():
        pytest.skip(f"{root} does not exist here")
    folder = Path(root) / f"kooperant-host-test-{tmp_path.name}"
    folder.mkdir(exist_ok=True)
    try:
        reading = read_mount(str(folder))
        expected_fstype, expected_target = findmnt(folder)
    finally:
        folder.rmdir()

    assert reading.mount_type.fstype == expected_fstype
    assert reading.mount_type.mount_point == expected_target
    assert reading.mount_type.network is False
    assert reading.free_bytes == pytest.approx(psutil.disk_usage(str(root)).free, abs=2**30)


def test_read_mount_missing_path_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_mount(str(tmp_path / "absent"))


class ControlledClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class BlockingMount:
    """A mount reader that hangs until released, like statvfs on a dead NFS server."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls = 0
        self.failure: OSError | None = None

    def __call__(self, path: str) -> MountReading:
        self.calls += 1
        self.release.wait(timeout=10)
        if self.failure is not None:
            raise self.failure
        return MountReading(5 * 2**30, MountType("nfs4", path, network=True))


def make_probe(reader: BlockingMount, clock: ControlledClock) -> MountProbe:
    return MountProbe(
        "host-test", "/srv/data", timeout_seconds=0.05, read_mount=reader, clock=clock
    )


async def test_probe_hung_mount_times_out_once(caplog: pytest.LogCaptureFixture) -> None:
    reader, clock = BlockingMount(), ControlledClock()
    probe = make_probe(reader, clock)

    with caplog.at_level(logging.INFO, logger="adapters.host"):
        first = await probe.read(first=True)
        clock.now += timedelta(seconds=5)
        second = await probe.read()
        third = await probe.read()
        reader.release.set()
        await asyncio.sleep(0.05)  # the hung read ends; its late result is dropped
        clock.now += timedelta(seconds=5)
        back = await probe.read()

    assert first is None
    assert second is None
    assert third is None
    assert back == MountReading(5 * 2**30, MountType("nfs4", "/srv/data", network=True))
    assert reader.calls == 2  # no second thread while the first read hung
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    infos = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert errors == [
        "adapter 'host-test': mount '/srv/data' is left out until it can be read again: "
        "reading free space timed out after 0.05 s"
    ]
    assert infos == [
        "adapter 'host-test': mount '/srv/data' can be read again (nfs4 on /srv/data, network)"
    ]


async def test_probe_health_tracks_states() -> None:
    reader, clock = BlockingMount(), ControlledClock()
    probe = make_probe(reader, clock)
    started = clock.now

    initial = probe.health()
    await probe.read()
    failed_at = clock.now
    timed_out = probe.health()
    reader.release.set()
    await asyncio.sleep(0.05)
    clock.now += timedelta(seconds=5)
    await probe.read()
    recovered = probe.health()

    assert initial.state is ConnectionState.CONNECTING
    assert initial.since == started
    assert initial.source == "mount /srv/data"
    assert timed_out.state is ConnectionState.DISCONNECTED
    assert timed_out.since == failed_at
    assert timed_out.errors == {"read_failures": 0, "timeouts": 1}
    assert timed_out.detail == "reading free space timed out after 0.05 s"
    assert timed_out.last_data is None
    assert recovered.state is ConnectionState.CONNECTED
    assert recovered.since == clock.now
    assert recovered.last_data == clock.now
    assert recovered.reconnects == 1
    assert recovered.source == "mount /srv/data (nfs4 on /srv/data, network)"


async def test_probe_read_error_counted() -> None:
    reader, clock = BlockingMount(), ControlledClock()
    reader.release.set()
    reader.failure = OSError(116, "Stale file handle")
    probe = make_probe(reader, clock)

    await probe.read()
    await probe.read()
    health = probe.health()

    assert health.state is ConnectionState.DISCONNECTED
    assert health.errors == {"read_failures": 2, "timeouts": 0}
    assert health.detail == "reading free space failed: [Errno 116] Stale file handle"


async def test_probe_missing_at_start_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "no-such-share")
    probe = MountProbe(
        "host-test", missing, timeout_seconds=1, read_mount=read_mount, clock=ControlledClock()
    )

    with caplog.at_level(logging.ERROR, logger="adapters.host"):
        assert await probe.read(first=True) is None
        await asyncio.to_thread(Path(missing).mkdir)
        assert await probe.read() is None

    assert probe.skipped
    assert len(caplog.records) == 1
    assert "'mounts' does not exist" in caplog.records[0].getMessage()
    assert probe.health().state is ConnectionState.DISCONNECTED
    assert probe.health().detail is not None
    assert missing in (probe.health().detail or "")
