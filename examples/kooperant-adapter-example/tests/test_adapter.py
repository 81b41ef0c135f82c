"""The example adapter following a gateway file: changes, invalid versions, age and health."""

from __future__ import annotations

import asyncio
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from kooperant_example_adapter import SiloLevelAdapter, SiloSettings
from pydantic import ValidationError

from adapters.base import AdapterContext, ConnectionState, ResourceAmounts
from kooperant.adapter_kit import ChangeCounter

START = datetime(2026, 3, 2, 5, 0, tzinfo=UTC)
SILOS = [
    {"tag": "SILO_1.LEVEL", "resource": "silo-1", "capacity_m3": 40, "display_name": "Silos 1"},
    {"tag": "SILO_2.LEVEL", "resource": "silo-2", "capacity_m3": 35},
]


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def write_levels(path: Path, written_at: datetime, **levels: float) -> None:
    readings = [{"tag": tag, "value": value, "unit": "m3"} for tag, value in levels.items()]
    path.write_text(json.dumps({"written_at": written_at.isoformat(), "readings": readings}))
    # A new version must differ in size or modification time, also within one clock tick.
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def make_adapter(tmp_path: Path, **settings: Any) -> tuple[SiloLevelAdapter, Clock, ChangeCounter]:
    clock = Clock()
    changes = ChangeCounter()
    context = AdapterContext(
        member="acme",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=changes,
        clock=clock,
    )
    values = {"path": "levels.json", "silos": SILOS, **settings}
    adapter = SiloLevelAdapter("silosy", SiloSettings.model_validate(values), context)
    return adapter, clock, changes


def free_volumes(adapter: SiloLevelAdapter) -> dict[str, float | None]:
    result = {}
    for item in adapter.collect():
        assert isinstance(item, ResourceAmounts)
        result[item.resource] = item.amounts[0].value
    return result


def test_adapter_offers_free_volume(tmp_path: Path) -> None:
    adapter, _, changes = make_adapter(tmp_path)
    write_levels(tmp_path / "levels.json", START, **{"SILO_1.LEVEL": 12.5, "SILO_2.LEVEL": 36})

    asyncio.run(adapter.poll())

    [silo_1, _] = adapter.collect()
    assert free_volumes(adapter) == {"silo-1": 27.5, "silo-2": 0.0}
    assert isinstance(silo_1, ResourceAmounts)
    assert silo_1.name == "Silos 1"
    assert silo_1.amounts[0].unit == "m3"
    assert changes.calls == 1


def test_adapter_notifies_only_on_change(tmp_path: Path) -> None:
    adapter, _, changes = make_adapter(tmp_path)
    path = tmp_path / "levels.json"
    write_levels(path, START, **{"SILO_1.LEVEL": 10, "SILO_2.LEVEL": 5})
    asyncio.run(adapter.poll())

    write_levels(path, START + timedelta(seconds=5), **{"SILO_1.LEVEL": 10, "SILO_2.LEVEL": 5})
    asyncio.run(adapter.poll())
    write_levels(path, START + timedelta(seconds=10), **{"SILO_1.LEVEL": 11, "SILO_2.LEVEL": 5})
    asyncio.run(adapter.poll())

    assert changes.calls == 2
    assert free_volumes(adapter) == {"silo-1": 29.0, "silo-2": 30.0}


def test_adapter_keeps_last_good_readings(tmp_path: Path) -> None:
    adapter, _, _ = make_adapter(tmp_path)
    path = tmp_path / "levels.json"
    write_levels(path, START, **{"SILO_1.LEVEL": 10, "SILO_2.LEVEL": 5})
    asyncio.run(adapter.poll())

    path.write_text('{"written_at": "2026-03-02T06:00:00Z", "readings": [')
    asyncio.run(adapter.poll())
    asyncio.run(adapter.poll())

    [health] = adapter.health()
    assert free_volumes(adapter) == {"silo-1": 30.0, "silo-2": 30.0}
    assert health.state is ConnectionState.DISCONNECTED
    assert health.errors["invalid_file"] == 1
    assert health.detail is not None
    assert health.detail.startswith(f"{path}:1: invalid JSON at column")


def test_adapter_reports_missing_file(tmp_path: Path) -> None:
    adapter, _, _ = make_adapter(tmp_path)

    asyncio.run(adapter.poll())

    [health] = adapter.health()
    assert adapter.collect() == []
    assert health.state is ConnectionState.DISCONNECTED
    assert health.detail == f"{tmp_path / 'levels.json'} not found"
    assert health.errors["missing_file"] == 1
    assert health.last_data is None


def test_adapter_reads_file_that_returns(tmp_path: Path) -> None:
    adapter, clock, _ = make_adapter(tmp_path)
    path = tmp_path / "levels.json"
    write_levels(path, START, **{"SILO_1.LEVEL": 10, "SILO_2.LEVEL": 5})
    asyncio.run(adapter.poll())
    saved = path.read_bytes()
    path.unlink()
    asyncio.run(adapter.poll())

    path.write_bytes(saved)
    clock.now = START + timedelta(seconds=30)
    asyncio.run(adapter.poll())

    [health] = adapter.health()
    assert health.state is ConnectionState.CONNECTED
    assert health.since == clock.now
    assert health.last_data == clock.now
    assert health.detail is None


def test_adapter_drops_stale_readings(tmp_path: Path) -> None:
    adapter, clock, _ = make_adapter(tmp_path, max_age_seconds=60)
    write_levels(tmp_path / "levels.json", START, **{"SILO_1.LEVEL": 10, "SILO_2.LEVEL": 5})
    asyncio.run(adapter.poll())

    clock.now = START + timedelta(seconds=60)
    fresh = free_volumes(adapter)
    clock.now = START + timedelta(seconds=61)

    [health] = adapter.health()
    assert fresh == {"silo-1": 30.0, "silo-2": 30.0}
    assert adapter.collect() == []
    assert health.detail == "readings written at 2026-03-02T05:00:00+00:00 are older than 60.0 s"


def test_adapter_skips_silo_without_reading(tmp_path: Path) -> None:
    adapter, _, _ = make_adapter(tmp_path)
    write_levels(tmp_path / "levels.json", START, **{"SILO_2.LEVEL": 5})

    asyncio.run(adapter.poll())

    assert free_volumes(adapter) == {"silo-2": 30.0}
    assert adapter.health()[0].errors["missing_tag"] == 1


@pytest.mark.parametrize(
    ("silos", "message"),
    [
        ([], "silos\n  Tuple should have at least 1 item"),
        ([{**SILOS[0], "capacity_m3": 0}], "capacity_m3\n  Input should be greater than 0"),
        ([{**SILOS[0], "resource": "silo/1"}], "resource\n  String should match pattern"),
        ([SILOS[0], {**SILOS[1], "tag": "SILO_1.LEVEL"}], "tag SILO_1.LEVEL is listed more"),
        ([SILOS[0], {**SILOS[1], "resource": "silo-1"}], "resource silo-1 is listed more"),
        ([{**SILOS[0], "level": 3}], "level\n  Extra inputs are not permitted"),
    ],
)
def test_settings_reject_bad_silos(silos: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        SiloSettings.model_validate({"path": "levels.json", "silos": silos})

    assert message in str(error.value)
