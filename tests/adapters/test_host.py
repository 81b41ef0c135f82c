"""Tests of the host adapter against psutil on the machine running the tests."""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import psutil
import pytest
import yaml
from pydantic import ValidationError

from adapters.base import AdapterContext, ResourceAmounts
from adapters.host import GIB, HostAdapter, HostReserve, HostSample, HostSettings, compute_amounts
from kooperant.protocol import Amount, ResourceKind

# Memory and disk change while the tests run (other processes, other tests), so live readings
# are compared within these bounds.
REPO_ROOT = Path(__file__).resolve().parents[2]
MEMORY_TOLERANCE_GIB = 1.0
DISK_TOLERANCE_GIB = 1.0


def make_context(tmp_path: Path) -> AdapterContext:
    return AdapterContext(
        member="test-member",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=lambda: None,
        clock=lambda: datetime.now(UTC),
    )


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
        cpu_count=8,
        cpu_percent=25.0,
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
    sample = HostSample(
        cpu_count=2, cpu_percent=90.0, memory_available_bytes=GIB, disk_free_bytes={"/": GIB}
    )
    reserve = HostReserve(cores=4, memory_gib=8, disk_gib=8)

    values = [amount.value for amount in compute_amounts(sample, reserve)]

    assert values == [0.0, 0.0, 0.0]


def test_compute_amounts_no_reserve() -> None:
    sample = HostSample(
        cpu_count=4, cpu_percent=0.0, memory_available_bytes=3 * GIB, disk_free_bytes={}
    )

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
    adapter = HostAdapter("host-test", settings, make_context(tmp_path))
    await adapter.start()
    try:
        first = adapter._sample
        for _ in range(100):
            await asyncio.sleep(0.02)
            if adapter._sample is not first:
                break
        assert adapter._sample is not first
    finally:
        await adapter.stop()


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


def test_host_example_config_valid() -> None:
    example = REPO_ROOT / "config" / "adapters" / "host.example.yaml"
    [entry] = yaml.safe_load(example.read_text(encoding="utf-8"))
    values = {key: value for key, value in entry.items() if key not in ("type", "name")}

    settings = HostSettings.model_validate(values)

    assert entry["type"] == "host"
    assert settings.reserve == HostReserve(cores=2, memory_gib=8, disk_gib=50)


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
        record.getMessage() for record in caplog.records if record.levelno == logging.INFO
    ]
    assert len(failures) == 1
    assert str(mount) in failures[0]
    assert len(recoveries) == 1
    assert "can be read again" in recoveries[0]
