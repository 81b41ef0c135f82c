"""Tests of the host adapter against psutil on the machine running the tests."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest
import yaml
from pydantic import ValidationError

from adapters.base import AdapterContext, ConnectionState, ResourceAmounts
from adapters.host import (
    GIB,
    Headroom,
    HostAdapter,
    HostReserve,
    HostSample,
    HostSettings,
    compute_amounts,
)
from adapters.host.mounts import MountReading, MountType
from agent.config import ConfigError, load_config
from kooperant.protocol import Amount, ResourceKind

# Memory and disk change while the tests run (other processes, other tests), so live readings
# are compared within these bounds.
REPO_ROOT = Path(__file__).resolve().parents[2]
MEMORY_TOLERANCE_GIB = 1.0
DISK_TOLERANCE_GIB = 1.0


def make_context(tmp_path: Path, clock: Callable[[], datetime] | None = None) -> AdapterContext:
    return AdapterContext(
        member="test-member",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=lambda: None,
        clock=clock or (lambda: datetime.now(UTC)),
    )


class ScriptedSampler:
    """A headroom sampler that returns the given samples in turn after a first baseline call."""

    def __init__(self, samples: list[Headroom]) -> None:
        self.samples = samples
        self.calls = 0

    def read(self) -> Headroom | None:
        self.calls += 1
        if self.calls == 1:
            return None
        return self.samples[min(self.calls - 2, len(self.samples) - 1)]


class ControlledClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 5, 8, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def amounts_by_key(observation: ResourceAmounts) -> dict[tuple[str, str | None], Amount]:
    return {(amount.quantity, amount.label): amount for amount in observation.amounts}


async def collect_once(settings: HostSettings, tmp_path: Path) -> ResourceAmounts:
    adapter = HostAdapter("host-test", settings, make_context(tmp_path))
    await adapter.start()
    try:
        observations = adapter.collect()
    finally:
        await adapter.stop()
    assert len(observations) == 1
    observation = observations[0]
    assert isinstance(observation, ResourceAmounts)
    return observation


async def test_host_reports_psutil_values(tmp_path: Path) -> None:
    settings = HostSettings(
        resource="server-1", display_name="Serwerownia", mounts=("/", str(tmp_path))
    )

    observation = await collect_once(settings, tmp_path)

    assert observation.resource == "server-1"
    assert observation.kind is ResourceKind.IT_CAPACITY
    assert observation.name == "Serwerownia"
    amounts = amounts_by_key(observation)
    assert set(amounts) == {
        ("cpu_free", None),
        ("memory_free", None),
        ("disk_free", "/"),
        ("disk_free", str(tmp_path)),
    }

    cores = psutil.cpu_count(logical=True) or 1
    assert amounts[("cpu_free", None)].unit == "cores"
    assert 0 <= amounts[("cpu_free", None)].value <= cores

    memory_gib = psutil.virtual_memory().available / GIB
    assert amounts[("memory_free", None)].unit == "GiB"
    assert amounts[("memory_free", None)].value == pytest.approx(
        memory_gib, abs=MEMORY_TOLERANCE_GIB
    )

    for mount in ("/", str(tmp_path)):
        disk_gib = psutil.disk_usage(mount).free / GIB
        assert amounts[("disk_free", mount)].unit == "GiB"
        assert amounts[("disk_free", mount)].value == pytest.approx(
            disk_gib, abs=DISK_TOLERANCE_GIB
        )


async def test_host_subtracts_reserve_live(tmp_path: Path) -> None:
    memory_gib = psutil.virtual_memory().available / GIB
    disk_gib = psutil.disk_usage("/").free / GIB
    reserve = HostReserve(cores=0, memory_gib=memory_gib / 2, disk_gib=disk_gib / 2)
    settings = HostSettings(resource="server-1", mounts=("/",), reserve=reserve)

    amounts = amounts_by_key(await collect_once(settings, tmp_path))

    assert amounts[("memory_free", None)].value == pytest.approx(
        memory_gib / 2, abs=MEMORY_TOLERANCE_GIB
    )
    assert amounts[("disk_free", "/")].value == pytest.approx(disk_gib / 2, abs=DISK_TOLERANCE_GIB)


def test_compute_amounts_reserve_arithmetic() -> None:
    sample = HostSample(
        cpu_free_cores=6.0,
        memory_available_bytes=10 * GIB,
        disk_free_bytes={"/": 100 * GIB, "/data": GIB // 2},
    )
    reserve = HostReserve(cores=2, memory_gib=4, disk_gib=1)

    amounts = compute_amounts(sample, reserve)

    assert amounts == (
        Amount("cpu_free", 4.0, "cores"),
        Amount("memory_free", 6.0, "GiB"),
        Amount("disk_free", 99.0, "GiB", label="/"),
        Amount("disk_free", 0.0, "GiB", label="/data"),
    )


def test_compute_amounts_never_negative() -> None:
    sample = HostSample(cpu_free_cores=0.2, memory_available_bytes=GIB, disk_free_bytes={"/": GIB})
    reserve = HostReserve(cores=4, memory_gib=8, disk_gib=8)

    values = [amount.value for amount in compute_amounts(sample, reserve)]

    assert values == [0.0, 0.0, 0.0]


def test_compute_amounts_no_reserve() -> None:
    sample = HostSample(cpu_free_cores=4.0, memory_available_bytes=3 * GIB, disk_free_bytes={})

    amounts = compute_amounts(sample, HostReserve())

    assert amounts == (Amount("cpu_free", 4.0, "cores"), Amount("memory_free", 3.0, "GiB"))


async def test_host_missing_mount_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(tmp_path / "no-such-disk")
    settings = HostSettings(resource="server-1", mounts=("/", missing))

    with caplog.at_level(logging.ERROR, logger="adapters.host"):
        observation = await collect_once(settings, tmp_path)

    labels = [amount.label for amount in observation.amounts if amount.quantity == "disk_free"]
    assert labels == ["/"]
    errors = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    assert len(errors) == 1
    assert missing in errors[0]
    assert "mounts" in errors[0]


async def test_host_samples_again_after_interval(tmp_path: Path) -> None:
    settings = HostSettings(
        resource="server-1", mounts=(str(tmp_path),), sample_interval_seconds=0.05
    )
    sampler = ScriptedSampler([Headroom(1.0, GIB)] * 10)
    adapter = HostAdapter("host-test", settings, make_context(tmp_path), sampler=sampler)
    await adapter.start()
    try:
        calls_after_start = sampler.calls
        for _ in range(100):
            await asyncio.sleep(0.02)
            if sampler.calls >= calls_after_start + 2:
                break
    finally:
        await adapter.stop()

    assert calls_after_start == 2  # the first call only sets the CPU baseline
    assert sampler.calls >= calls_after_start + 2


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"resource": "bad/id"}, "resource"),
        ({"resource": ""}, "resource"),
        ({"resource": "server-1", "mounts": []}, "mounts"),
        ({"resource": "server-1", "reserve": {"cores": -1}}, "reserve.cores"),
        ({"resource": "server-1", "reserve": {"memory": 1}}, "reserve.memory"),
        ({"resource": "server-1", "sample_interval_seconds": 0}, "sample_interval_seconds"),
        ({"resource": "server-1", "mount": ["/"]}, "mount"),
        ({}, "resource"),
    ],
)
def test_host_settings_invalid(settings: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as raised:
        HostSettings.model_validate(settings)

    locations = [".".join(str(part) for part in error["loc"]) for error in raised.value.errors()]
    assert field in locations


def test_host_settings_defaults() -> None:
    settings = HostSettings.model_validate({"resource": "server-1"})

    assert settings.mounts == (("C:\\",) if os.name == "nt" else ("/",))
    assert settings.reserve == HostReserve(cores=0, memory_gib=0, disk_gib=0)
    assert settings.sample_interval_seconds == 5.0
    assert settings.window_seconds == 300.0
    assert settings.mount_timeout_seconds == 5.0
    assert settings.cgroup == "auto"
    assert settings.cgroup_root == Path("/sys/fs/cgroup")


def test_host_example_config_valid() -> None:
    example = REPO_ROOT / "config" / "adapters" / "host.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = HostSettings.model_validate(values)

    assert entry["type"] == "host"
    assert settings.reserve == HostReserve(cores=2, memory_gib=8, disk_gib=50)
    assert settings.window_seconds == 300
    assert settings.mount_timeout_seconds == 5
    assert settings.cgroup == "auto"


async def test_host_mount_removed_then_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    mount = tmp_path / "disk"
    mount.mkdir()
    settings = HostSettings(resource="server-1", mounts=(str(mount),), sample_interval_seconds=0.02)
    adapter = HostAdapter("host-test", settings, make_context(tmp_path))

    def disk_labels() -> list[str | None]:
        [observation] = adapter.collect()
        assert isinstance(observation, ResourceAmounts)
        return [item.label for item in observation.amounts if item.quantity == "disk_free"]

    async def wait_for_labels(expected: list[str | None]) -> None:
        for _ in range(250):
            if disk_labels() == expected:
                return
            await asyncio.sleep(0.02)
        assert disk_labels() == expected

    with caplog.at_level(logging.INFO, logger="adapters.host"):
        await adapter.start()
        try:
            assert disk_labels() == [str(mount)]
            mount.rmdir()
            await wait_for_labels([])
            await asyncio.sleep(0.1)  # several more failing samples, logged only once
            mount.mkdir()
            await wait_for_labels([str(mount)])
        finally:
            await adapter.stop()

    failures = [record.getMessage() for record in caplog.records if record.levelno == logging.ERROR]
    recoveries = [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.INFO and str(mount) in record.getMessage()
    ]
    assert len(failures) == 1
    assert str(mount) in failures[0]
    assert len(recoveries) == 1
    assert "can be read again" in recoveries[0]


async def test_host_offers_window_mean(tmp_path: Path) -> None:
    clock = ControlledClock()
    settings = HostSettings(
        resource="server-1",
        mounts=(str(tmp_path),),
        sample_interval_seconds=10,
        window_seconds=30,
        reserve=HostReserve(cores=0.5),
    )
    samples = [Headroom(4.0, 8 * GIB), Headroom(2.0, 4 * GIB), Headroom(0.0, 6 * GIB)]
    samples.append(Headroom(6.0, 2 * GIB))
    sampler = ScriptedSampler(samples)
    adapter = HostAdapter("host-test", settings, make_context(tmp_path, clock), sampler=sampler)

    def cpu_and_memory() -> tuple[float | None, float | None]:
        [observation] = adapter.collect()
        assert isinstance(observation, ResourceAmounts)
        amounts = amounts_by_key(observation)
        return amounts[("cpu_free", None)].value, amounts[("memory_free", None)].value

    await adapter.sample()  # baseline only
    assert adapter.collect() == []
    await adapter.sample()
    assert cpu_and_memory() == (3.5, 8.0)  # one sample so far
    for _ in range(2):
        clock.now += timedelta(seconds=10)
        await adapter.sample()
    assert cpu_and_memory() == (1.5, 6.0)  # mean of 4, 2, 0 cores; 8, 4, 6 GiB
    clock.now += timedelta(seconds=10)
    await adapter.sample()
    assert cpu_and_memory() == (2.17, 4.0)  # the first sample left the 30 s window


async def test_host_cgroup_tree_bounds_memory(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    root.mkdir()
    for name, text in {
        "cgroup.controllers": "cpu memory\n",
        "cpu.max": "50000 100000\n",
        "cpu.stat": "usage_usec 1000\n",
        "memory.max": f"{GIB}\n",
        "memory.current": f"{GIB // 4}\n",
    }.items():
        (root / name).write_text(text, encoding="ascii")
    bounded = HostSettings(resource="server-1", mounts=("/",), cgroup_root=root)
    ignored = HostSettings(resource="server-1", mounts=("/",), cgroup_root=root, cgroup="off")

    bounded_amounts = amounts_by_key(await collect_once(bounded, tmp_path))
    ignored_amounts = amounts_by_key(await collect_once(ignored, tmp_path))

    assert bounded_amounts[("memory_free", None)].value == 0.75
    assert 0 <= (bounded_amounts[("cpu_free", None)].value or 0) <= 0.5
    host_memory_gib = psutil.virtual_memory().available / GIB
    assert ignored_amounts[("memory_free", None)].value == pytest.approx(
        host_memory_gib, abs=MEMORY_TOLERANCE_GIB
    )


async def test_host_hung_mount_does_not_block(tmp_path: Path) -> None:
    release = threading.Event()
    hung = "/srv/hung-share"

    def read_mount(path: str) -> MountReading:
        if path == hung:
            release.wait(timeout=10)
        return MountReading(3 * GIB, MountType("nfs4", path, network=path == hung))

    settings = HostSettings(
        resource="server-1",
        mounts=("/", hung),
        mount_timeout_seconds=0.3,
        sample_interval_seconds=0.05,
    )
    sampler = ScriptedSampler([Headroom(1.0, GIB)])
    adapter = HostAdapter(
        "host-test", settings, make_context(tmp_path), sampler=sampler, read_mount=read_mount
    )

    started = time.monotonic()
    await adapter.start()
    try:
        start_seconds = time.monotonic() - started
        [observation] = adapter.collect()
        await asyncio.sleep(0.5)
        health = {source.source: source for source in adapter.health()}
    finally:
        await adapter.stop()
        release.set()

    assert start_seconds < 1.0
    assert isinstance(observation, ResourceAmounts)
    labels = [amount.label for amount in observation.amounts if amount.quantity == "disk_free"]
    assert labels == ["/"]
    assert health["mount / (nfs4 on /, local)"].state is ConnectionState.CONNECTED
    assert health["mount /srv/hung-share"].state is ConnectionState.DISCONNECTED
    assert health["mount /srv/hung-share"].errors["timeouts"] >= 1


async def test_host_health_one_source_per_mount(tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-disk")
    settings = HostSettings(resource="server-1", mounts=(str(tmp_path), missing))
    adapter = HostAdapter("host-test", settings, make_context(tmp_path))

    await adapter.start()
    try:
        health = adapter.health()
    finally:
        await adapter.stop()

    assert len(health) == 2
    present, absent = health
    assert present.source.startswith(f"mount {tmp_path} (")
    assert present.source.endswith(", local)")
    assert present.state is ConnectionState.CONNECTED
    assert present.last_data is not None
    assert present.errors == {"read_failures": 0, "timeouts": 0}
    assert absent.source == f"mount {missing}"
    assert absent.state is ConnectionState.DISCONNECTED
    assert absent.detail is not None
    assert "does not exist" in absent.detail


async def test_host_real_cgroup_root_works(tmp_path: Path) -> None:
    settings = HostSettings(resource="server-1", mounts=("/",), cgroup_root=Path("/sys/fs/cgroup"))

    amounts = amounts_by_key(await collect_once(settings, tmp_path))

    cores = psutil.cpu_count(logical=True) or 1
    assert 0 <= (amounts[("cpu_free", None)].value or 0) <= cores
    assert (amounts[("memory_free", None)].value or 0) > 0


def test_host_settings_window_shorter_than_interval() -> None:
    with pytest.raises(ValidationError) as raised:
        HostSettings.model_validate(
            {"resource": "server-1", "sample_interval_seconds": 60, "window_seconds": 30}
        )

    [error] = raised.value.errors()
    assert error["msg"] == (
        "Value error, window_seconds (30.0) is shorter than sample_interval_seconds (60.0), "
        "so the window would hold no sample; make the window at least as long as the interval"
    )


@pytest.mark.parametrize(
    ("settings", "field", "message"),
    [
        ({"window_seconds": -1}, "window_seconds", "greater than 0"),
        ({"window_seconds": 0}, "window_seconds", "greater than 0"),
        ({"sample_interval_seconds": -5}, "sample_interval_seconds", "greater than 0"),
        ({"mount_timeout_seconds": 0}, "mount_timeout_seconds", "greater than 0"),
        ({"mount_timeout_seconds": 1e9}, "mount_timeout_seconds", "less than or equal to 3600"),
        ({"cgroup": "on"}, "cgroup", "'auto' or 'off'"),
        ({"mounts": ["/", ""]}, "mounts", "a mount path is empty"),
        ({"mounts": ["/srv", "/", "/srv"]}, "mounts", "mount '/srv' is listed more than once"),
        ({"window": 60}, "window", "Extra inputs are not permitted"),
        ({"window_seconds": "inf"}, "window_seconds", "finite number"),
    ],
)
def test_host_settings_invalid_message(
    settings: dict[str, object], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        HostSettings.model_validate({"resource": "server-1", **settings})

    errors = {
        ".".join(str(part) for part in error["loc"]): error["msg"]
        for error in raised.value.errors()
    }
    assert field in errors
    assert message in errors[field]


def test_host_config_error_names_line(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "member: acme-metal\n"
        "cluster: host-settings-test\n"
        "broker: {url: 'mqtt://127.0.0.1:1883'}\n"
        "policy: policy.yaml\n"
        "adapters:\n"
        "  - type: host\n"
        "    name: serwerownia\n"
        "    resource: server-01\n"
        "    sample_interval_seconds: 60\n"
        "    window_seconds: 30\n",
        encoding="utf-8",
    )

    with pytest.raises(ConfigError) as raised:
        load_config(config)

    message = str(raised.value)
    assert message.startswith(f"{config}:6: adapters[0]: ")
    assert "window_seconds (30.0) is shorter than sample_interval_seconds (60.0)" in message
