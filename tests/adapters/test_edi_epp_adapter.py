"""Tests of the edi_epp adapter through poll, collect and health, on real files and folders."""

from __future__ import annotations

import logging
import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from adapters.base import AdapterContext, ConnectionState, SupplyStock
from adapters.edi_epp import EdiEppAdapter, EdiEppSettings
from kooperant.protocol import Amount

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edi_epp"
TEXT = (FIXTURES / "dokumenty.epp").read_bytes().decode("cp1250")


class Notifications:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make_adapter(tmp_path: Path, notifications: Notifications, **settings: object) -> EdiEppAdapter:
    context = AdapterContext(
        member="test-member-edi",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=notifications,
        clock=lambda: datetime.now(UTC),
    )
    values: dict[str, object] = {"path": "subiekt", "stable_seconds": 0}
    values.update(settings)
    return EdiEppAdapter("subiekt", EdiEppSettings.model_validate(values), context)


def copy_folder(target: Path) -> Path:
    target.mkdir()
    for source in sorted((FIXTURES / "folder").iterdir()):
        shutil.copy(source, target / source.name)
    return target


def stock_of(observations: list[object], resource: str) -> float | None:
    for observation in observations:
        if isinstance(observation, SupplyStock) and observation.resource == resource:
            return observation.amounts[0].value
    return None


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


async def test_adapter_reads_whole_folder(tmp_path: Path) -> None:
    notifications = Notifications()
    folder = copy_folder(tmp_path / "subiekt")
    adapter = make_adapter(tmp_path, notifications)

    await adapter.poll()

    observations = adapter.collect()
    assert [item.resource for item in observations if isinstance(item, SupplyStock)] == [
        "bl-dc01-1.5",
        "loz-6204-2rs",
        "sr-m8x30-oc",
    ]
    assert stock_of(observations, "sr-m8x30-oc") == 3800
    assert notifications.count == 1
    [health] = adapter.health()
    assert health.source == str(folder)
    assert health.state is ConnectionState.CONNECTED
    assert health.detail is None


async def test_adapter_new_file_in_folder(tmp_path: Path) -> None:
    notifications = Notifications()
    folder = copy_folder(tmp_path / "subiekt")
    adapter = make_adapter(tmp_path, notifications)
    await adapter.poll()

    # A second receipt of bolts, written as a new file older than the others.
    receipt = (folder / "PZ_1-11-2026.epp").read_bytes().replace(b"PZ 1/11/2026", b"PZ 7/11/2026")
    added = folder / "PZ_7-11-2026.epp"
    added.write_bytes(receipt)
    os.utime(added, ns=(1_000_000_000, 1_000_000_000))
    await adapter.poll()

    assert stock_of(adapter.collect(), "sr-m8x30-oc") == 8800
    assert notifications.count == 2

    added.unlink()
    await adapter.poll()

    assert stock_of(adapter.collect(), "sr-m8x30-oc") == 3800
    assert notifications.count == 3


async def test_adapter_newest_file_only(tmp_path: Path) -> None:
    notifications = Notifications()
    folder = copy_folder(tmp_path / "subiekt")
    newest = folder / "ZD_1-11-2026.epp"
    os.utime(newest, ns=(4_000_000_000_000_000_000, 4_000_000_000_000_000_000))
    adapter = make_adapter(tmp_path, notifications, read_folder="newest")

    await adapter.poll()

    [order] = adapter.collect()
    assert isinstance(order, SupplyStock)
    assert order.amounts[1] == Amount("incoming", 80, "ark")


async def test_adapter_bad_version_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    path = tmp_path / "dokumenty.epp"
    path.write_bytes(TEXT.encode("cp1250"))
    adapter = make_adapter(tmp_path, notifications, path="dokumenty.epp")
    await adapter.poll()
    good = adapter.collect()

    bad = TEXT.replace('"szt",200.0000,200.0000', '"szt",200.0000,dwieście')
    path.write_bytes(bad.encode("cp1250"))
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == good
    assert stock_of(good, "loz-6204-2rs") == 160
    assert notifications.count == 1
    [message] = error_messages(caplog)
    line = bad[: bad.index("dwieście")].count("\n") + 1
    assert f"dokumenty.epp:{line}" in message
    assert "field 12: quantity in stock unit" in message
    assert "'dwieście'" in message
    assert "last EDI++ export read stays in use" in message
    [health] = adapter.health()
    assert health.state is ConnectionState.DISCONNECTED
    assert health.errors == {"invalid_exports": 1}
    assert health.detail is not None and "dwieście" in health.detail

    path.write_bytes(TEXT.replace("200.0000,200.0000", "210.0000,210.0000").encode("cp1250"))
    await adapter.poll()

    assert stock_of(adapter.collect(), "loz-6204-2rs") == 170
    assert adapter.health()[0].state is ConnectionState.CONNECTED


async def test_adapter_bad_file_in_folder_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    folder = copy_folder(tmp_path / "subiekt")
    (folder / "WZ_2-11-2026.epp").write_bytes(b'[INFO]\r\n"1.05",3,1250,"Subiekt')
    adapter = make_adapter(tmp_path, notifications)

    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()

    assert adapter.collect() == []
    [message] = error_messages(caplog)
    assert "WZ_2-11-2026.epp:2" in message
    assert "ends inside the quoted text of field 4" in message


async def test_adapter_missing_opening_stock(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    copy_folder(tmp_path / "subiekt")
    adapter = make_adapter(tmp_path, notifications, opening_stock={"path": "stan.csv"})

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert adapter.collect() == []
    [message] = [record.getMessage() for record in caplog.records]
    assert "stan.csv not found" in message

    shutil.copy(FIXTURES / "stan_poczatkowy.csv", tmp_path / "stan.csv")
    await adapter.poll()

    assert stock_of(adapter.collect(), "bl-dc01-1.5") == 160
    assert stock_of(adapter.collect(), "klej-zyw-2") == 12


async def test_adapter_empty_folder_missing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    (tmp_path / "subiekt").mkdir()
    adapter = make_adapter(tmp_path, notifications)

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.poll()

    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "no file matching '*.epp'" in record.getMessage()
    assert adapter.health()[0].errors == {"missing": 1}
