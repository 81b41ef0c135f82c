"""Resource ids reported by several adapters, and when a collection has heard from every adapter."""

from __future__ import annotations

import logging
import shutil
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.base import (
    MachineStatus,
    ResourceAmounts,
    ScheduledWork,
    SupplyStock,
)
from agent.check import check_policy
from agent.check_cli import EXIT_WARNINGS
from agent.cli import app
from agent.config import load_config
from agent.resource_sources import ResourceConflict, ResourceSources
from agent.runner import Agent
from kooperant.protocol import Amount, MachineState, ResourceKind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
SHEETS = (Amount("stock", 63.0, "ark"),)


def test_state_and_plan_of_machine_agree() -> None:
    sources = ResourceSources()
    sources.add("hala-a", [MachineStatus("cnc-1", MachineState.EXECUTING, since=SINCE)])
    sources.add("plan", [ScheduledWork("cnc-1", ())])

    assert sources.conflicts() == ()


def test_supplies_from_two_adapters_conflict() -> None:
    sources = ResourceSources()
    sources.add("stany", [SupplyStock("bl-dc01-1.5", None, SHEETS)])
    sources.add("jpk", [SupplyStock("bl-dc01-1.5", None, SHEETS)])

    [conflict] = sources.conflicts()

    assert conflict == ResourceConflict("bl-dc01-1.5", ("jpk", "stany"), ("supplies",))
    assert "each with its own supplies amounts" in conflict.message()


def test_storage_and_machine_conflict() -> None:
    sources = ResourceSources()
    sources.add("plan", [ScheduledWork("laser-02", ())])
    storage = ResourceAmounts("laser-02", ResourceKind.STORAGE, (Amount("pallet_places", 4, "p"),))
    sources.add("magazyn", [storage])

    [conflict] = sources.conflicts()

    assert conflict.kinds == ("machine", "storage")
    assert "as different kinds (machine, storage)" in conflict.message()


def test_one_adapter_many_items_no_conflict() -> None:
    sources = ResourceSources()
    sources.add("jpk", [SupplyStock("a", None, SHEETS), SupplyStock("b", None, SHEETS)])

    assert sources.conflicts() == ()


def write_agent(folder: Path, adapters: str) -> Path:
    (folder / "policy.yaml").write_text("share:\n  - kind: supplies\n    fields: [amounts]\n")
    path = folder / "agent.yaml"
    text = """
        member: acme
        cluster: pomorskie-metal
        broker:
          url: mqtt://127.0.0.1:1
        status:
          enabled: false
        policy: policy.yaml
        adapters:
    """
    path.write_text(textwrap.dedent(text) + textwrap.indent(textwrap.dedent(adapters), "  "))
    return path


JPK_AND_STOCK = """
    - type: jpk_mag
      name: jpk
      path: magazyn.xml
      stable_seconds: 0
      poll_interval_seconds: 0.2
    - type: stock
      name: stany
      path: stany.csv
      stable_seconds: 0
      poll_interval_seconds: 0.2
"""


async def test_agent_logs_conflict_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    shutil.copy(FIXTURES / "jpk_mag" / "magazyn_2026_03.xml", tmp_path / "magazyn.xml")
    (tmp_path / "stany.csv").write_text(
        "Indeks;Nazwa;Ilość;J.m.;Rezerwa\r\nBL-DC01-1.5;Blacha stalowa DC01 1,5 mm;500;ark;0\r\n",
        encoding="utf-8",
    )
    agent = Agent(load_config(write_agent(tmp_path, JPK_AND_STOCK)))

    with caplog.at_level(logging.WARNING, logger="agent.runner"):
        await agent.start_adapters()
        try:
            snapshot = await agent.collect_when_ready(10)
            agent.collect_offers()
        finally:
            await agent.stop_adapters()

    assert snapshot.ready
    assert [conflict.resource for conflict in snapshot.conflicts] == ["bl-dc01-1.5"]
    warnings = [record.getMessage() for record in caplog.records]
    assert len([message for message in warnings if "'bl-dc01-1.5'" in message]) == 1


async def test_check_waits_for_every_adapter(tmp_path: Path) -> None:
    # The stock list is read only once it has been stable for 1.5 s: check must wait for it
    # instead of returning as soon as the JPK file alone has been read.
    shutil.copy(FIXTURES / "jpk_mag" / "magazyn_2026_03.xml", tmp_path / "magazyn.xml")
    (tmp_path / "stany.csv").write_text(
        "Indeks;Nazwa;Ilość;J.m.;Rezerwa\r\nKLEJ-X;Klej żółty;9;szt;0\r\n", encoding="utf-8"
    )
    adapters = JPK_AND_STOCK.replace(
        "path: stany.csv\n      stable_seconds: 0", "path: stany.csv\n      stable_seconds: 1.5"
    )
    assert "stable_seconds: 1.5" in adapters
    config = load_config(write_agent(tmp_path, adapters))

    result = await check_policy(config, wait_seconds=15)

    assert result.ready
    assert "klej-x" in result.resources
    assert "bl-dc01-1.5" in result.resources


async def test_empty_read_counts_as_answered(tmp_path: Path) -> None:
    # A stock list with nothing above its reserve offers nothing, but it was read.
    (tmp_path / "stany.csv").write_text(
        "Indeks;Nazwa;Ilość;J.m.;Rezerwa\r\nKLEJ-X;Klej;9;szt;9\r\n", encoding="utf-8"
    )
    adapters = """
        - type: stock
          name: stany
          path: stany.csv
          stable_seconds: 0
          poll_interval_seconds: 0.2
    """
    agent = Agent(load_config(write_agent(tmp_path, adapters)))
    await agent.start_adapters()
    try:
        snapshot = await agent.collect_when_ready(10)
    finally:
        await agent.stop_adapters()

    assert snapshot.ready
    assert snapshot.offers == ()


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "⚠ resource bl-dc01-1.5 is reported by the adapters jpk, stany, each with its own"),
        ("pl", "⚠ zasób bl-dc01-1.5 zgłaszają adaptery jpk, stany, każdy z własnymi ilościami"),
    ],
)
def test_check_cli_lists_conflict(tmp_path: Path, language: str, expected: str) -> None:
    shutil.copy(FIXTURES / "jpk_mag" / "magazyn_2026_03.xml", tmp_path / "magazyn.xml")
    (tmp_path / "stany.csv").write_text(
        "Indeks;Nazwa;Ilość;J.m.;Rezerwa\r\nBL-DC01-1.5;Blacha;500;ark;0\r\n", encoding="utf-8"
    )
    path = write_agent(tmp_path, JPK_AND_STOCK)

    result = CliRunner().invoke(
        app, ["check", "--config", str(path), "--wait", "10"], env={"KOOPERANT_LANG": language}
    )

    assert result.exit_code == EXIT_WARNINGS, result.output
    assert any(line.startswith(expected) for line in result.stdout.splitlines()), result.stdout
