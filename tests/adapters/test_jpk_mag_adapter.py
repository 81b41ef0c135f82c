"""Tests of the jpk_mag adapter: polling, keeping the last good stock, health, bounded memory."""

from __future__ import annotations

import logging
import os
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from adapters.base import AdapterContext, ConnectionState, SupplyStock
from adapters.errors import ExportFormatError
from adapters.jpk_mag import JpkMagAdapter, JpkMagReader, JpkMagSettings
from adapters.jpk_mag.adapter import NO_OPENING_STOCK

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jpk_mag"
JPK_TEXT = (FIXTURES / "magazyn_2026_03.xml").read_text(encoding="utf-8")
EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "adapters" / "jpk_mag.example.yaml"


class Notifications:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def make_adapter(
    tmp_path: Path, notifications: Notifications, **overrides: object
) -> JpkMagAdapter:
    context = AdapterContext(
        member="test-member-jpk",
        timezone=ZoneInfo("Europe/Warsaw"),
        config_dir=tmp_path,
        notify_changed=notifications,
        clock=lambda: datetime.now(UTC),
    )
    values: dict[str, object] = {"path": "eksport", "stable_seconds": 0}
    values.update(overrides)
    return JpkMagAdapter("magazyn", JpkMagSettings.model_validate(values), context)


def stock(adapter: JpkMagAdapter) -> dict[str, float | None]:
    result = {}
    for observation in adapter.collect():
        assert isinstance(observation, SupplyStock)
        result[observation.resource] = observation.amounts[0].value
    return result


def error_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.levelno >= logging.ERROR]


def write_version(folder: Path, name: str, text: str, mtime: int) -> Path:
    """Write one export into ``folder`` with a distinct modification time, so it is the newest."""
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


async def test_adapter_reads_newest_with_opening(tmp_path: Path) -> None:
    notifications = Notifications()
    (tmp_path / "stan.csv").write_bytes((FIXTURES / "stan_poczatkowy_cp1250.csv").read_bytes())
    adapter = make_adapter(tmp_path, notifications, opening_stock={"path": "stan.csv"})
    write_version(tmp_path / "eksport", "JPK_MAG_2026_02.xml", "<stary/>", 1_700_000_000)
    write_version(tmp_path / "eksport", "JPK_MAG_2026_03.xml", JPK_TEXT, 1_700_000_100)
    write_version(tmp_path / "eksport", "notatki.txt", "nie JPK", 1_700_000_200)

    await adapter.poll()

    assert stock(adapter)["loz-6204-2rs"] == 108.0
    assert stock(adapter)["klej-pu-310"] == 24.0
    assert notifications.count == 1
    [health] = adapter.health()
    assert health.state is ConnectionState.CONNECTED
    assert health.detail is None


async def test_adapter_without_opening_health_detail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    write_version(tmp_path / "eksport", "JPK_MAG.xml", JPK_TEXT, 1_700_000_000)

    with caplog.at_level(logging.INFO, logger="adapters.jpk_mag.adapter"):
        await adapter.poll()

    assert stock(adapter)["loz-6204-2rs"] == 100.0
    [health] = adapter.health()
    assert health.detail == NO_OPENING_STOCK
    assert any(NO_OPENING_STOCK in record.getMessage() for record in caplog.records)


async def test_adapter_missing_opening_reads_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications, opening_stock={"path": "stan.csv"})
    write_version(tmp_path / "eksport", "JPK_MAG.xml", JPK_TEXT, 1_700_000_000)

    with caplog.at_level(logging.WARNING, logger="adapters.exports.adapter"):
        await adapter.poll()

    assert adapter.collect() == []
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert f"opening stock list {tmp_path / 'stan.csv'} not found" in record.getMessage()


async def test_adapter_bad_version_keeps_last_good(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    folder = tmp_path / "eksport"
    write_version(folder, "JPK_MAG_1.xml", JPK_TEXT, 1_700_000_000)
    await adapter.poll()
    good = stock(adapter)

    bad_text = JPK_TEXT.replace("<tns:IloscWydanaWZ>30<", "<tns:IloscWydanaWZ>trzydzieści<")
    bad = write_version(folder, "JPK_MAG_2.xml", bad_text, 1_700_000_100)
    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()
        await adapter.poll()

    assert stock(adapter) == good
    assert notifications.count == 1
    [message] = error_messages(caplog)
    assert f"{bad}:" in message
    assert "JPK/WZ/WZWiersz[1]/IloscWydanaWZ (WZ 'WZ/001/03/2026')" in message
    assert "'trzydzieści'" in message
    assert "the last JPK_MAG file read stays in use" in message
    [health] = adapter.health()
    assert health.state is ConnectionState.DISCONNECTED
    assert health.detail is not None and "trzydzieści" in health.detail

    fixed_text = JPK_TEXT.replace("<tns:IloscWydanaWZ>30<", "<tns:IloscWydanaWZ>40<")
    write_version(folder, "JPK_MAG_3.xml", fixed_text, 1_700_000_200)
    await adapter.poll()

    assert stock(adapter)["loz-6204-2rs"] == good["loz-6204-2rs"] - 10
    assert notifications.count == 2


async def test_adapter_version_2_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifications = Notifications()
    adapter = make_adapter(tmp_path, notifications)
    text = JPK_TEXT.replace('"JPK_MAG (1)"', '"JPK_MAG (2)"')
    write_version(tmp_path / "eksport", "JPK_MAG.xml", text, 1_700_000_000)

    with caplog.at_level(logging.ERROR, logger="adapters.exports.adapter"):
        await adapter.poll()

    assert adapter.collect() == []
    [message] = error_messages(caplog)
    assert "JPK_MAG (2)" in message
    assert "not supported yet" in message
    assert "nothing is offered from it until it is read" in message
    assert notifications.count == 0


async def test_adapter_stop_without_start(tmp_path: Path) -> None:
    adapter = make_adapter(tmp_path, Notifications())

    await adapter.stop()

    assert adapter.collect() == []


# ---- a large export is streamed


ITEMS = 400
LINES_PER_DOCUMENT = 12


def write_large_jpk(path: Path, documents: int) -> dict[str, int]:
    """Write a JPK_MAG with ``documents`` receipts and as many issues; return expected stock."""
    header_end = JPK_TEXT.index("  <tns:PZ>")
    expected = {f"MAT-{item:04d}": 0 for item in range(ITEMS)}
    with path.open("w", encoding="utf-8") as stream:
        stream.write(JPK_TEXT[:header_end])
        for kind, element, sign in (("PZ", "IloscPrzyjetaPZ", 1), ("WZ", "IloscWydanaWZ", -1)):
            stream.write(f"  <tns:{kind}>\n")
            supplier = "<tns:Dostawca>Stalprofil Sp. z o.o.</tns:Dostawca>" if sign > 0 else ""
            for number in range(documents):
                stream.write(
                    f"    <tns:{kind}Wartosc>"
                    f"<tns:Numer{kind}>{kind}/{number}/2026</tns:Numer{kind}>"
                    f"<tns:Data{kind}>2026-03-{number % 28 + 1:02d}</tns:Data{kind}>"
                    f"<tns:Wartosc{kind}>100.00</tns:Wartosc{kind}>{supplier}"
                    f"</tns:{kind}Wartosc>\n"
                )
            for number in range(documents):
                for position in range(LINES_PER_DOCUMENT):
                    item = (number * LINES_PER_DOCUMENT + position) % ITEMS
                    quantity = 3 if sign > 0 else 1
                    expected[f"MAT-{item:04d}"] += sign * quantity
                    stream.write(
                        f"    <tns:{kind}Wiersz><tns:Numer2{kind}>{kind}/{number}/2026"
                        f"</tns:Numer2{kind}><tns:KodTowaru{kind}>MAT-{item:04d}"
                        f"</tns:KodTowaru{kind}><tns:NazwaTowaru{kind}>Śruba M8×30 ocynk "
                        f"partia {item}</tns:NazwaTowaru{kind}><tns:{element}>{quantity}"
                        f"</tns:{element}><tns:JednostkaMiary{kind}>szt</tns:JednostkaMiary{kind}>"
                        f"<tns:CenaJedn{kind}>0.42</tns:CenaJedn{kind}></tns:{kind}Wiersz>\n"
                    )
            stream.write(
                f"    <tns:{kind}Ctrl><tns:Liczba{kind}>{documents}</tns:Liczba{kind}>"
                f"<tns:Suma{kind}>0.00</tns:Suma{kind}></tns:{kind}Ctrl>\n  </tns:{kind}>\n"
            )
        stream.write("</tns:JPK>\n")
    return expected


def test_large_file_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "duzy.xml"
    expected = write_large_jpk(path, documents=800)
    size = path.stat().st_size
    assert size > 5_000_000

    tracemalloc.start()
    try:
        totals: dict[str, int] = {}
        for movement in JpkMagReader(path).movements():
            totals[movement.code] = totals.get(movement.code, 0) + int(movement.quantity)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert totals == expected
    # Measured: a peak of about 0.9 MB for this 6.3 MB file; the document index, not the lines.
    assert peak < size / 4, f"peak {peak} bytes for a file of {size} bytes"


def test_large_file_truncated(tmp_path: Path) -> None:
    path = tmp_path / "duzy.xml"
    write_large_jpk(path, documents=600)
    data = path.read_bytes()
    cut = data[: len(data) * 2 // 3]
    path.write_bytes(cut)

    with pytest.raises(ExportFormatError, match="ends early or is not well-formed") as caught:
        list(JpkMagReader(path).movements())

    assert caught.value.line == cut.count(b"\n") + 1


# ---- example config


def test_example_config_valid() -> None:
    [entry] = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert entry.pop("type") == "jpk_mag"
    entry.pop("name")

    settings = JpkMagSettings.model_validate(entry)

    assert settings.opening_stock is not None
    assert settings.items
