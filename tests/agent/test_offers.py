"""Building offers from observations and the ``resources`` section."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.base import (
    MachineStatus,
    Observation,
    ResourceAmounts,
    ScheduledWork,
    SupplyStock,
    WorkOrder,
)
from agent.config import AgentConfig, load_config
from agent.offers import OfferBuilder
from kooperant.intervals import Interval
from kooperant.protocol import Amount, MachineState, Price, ResourceKind

# Monday 2026-03-02 00:00 in Warsaw; the default calendar gives 160 h in 14 days.
NOW = datetime(2026, 3, 1, 23, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> AgentConfig:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(
        "member: acme\ncluster: pomorskie-metal\nbroker: {url: 'mqtt://127.0.0.1'}\n"
        "policy: policy.yaml\nresources:\n"
        "  cnc-1: {name: DMU 50, kind: machine, capabilities: [5-axis-milling]}\n",
        encoding="utf-8",
    )
    return load_config(path, {})


def test_declared_machine_without_observations(config: AgentConfig) -> None:
    (offer,) = OfferBuilder(config).build([], NOW)

    assert (offer.resource, offer.kind, offer.name) == ("cnc-1", ResourceKind.MACHINE, "DMU 50")
    assert offer.capabilities == ("5-axis-milling",)
    assert offer.free_hours == 160.0
    assert offer.state is None
    assert offer.horizon == Interval(NOW, datetime(2026, 3, 15, 23, tzinfo=UTC))


def test_observed_machine_with_orders(config: AgentConfig) -> None:
    since = datetime(2026, 3, 1, 12, tzinfo=UTC)
    order = WorkOrder("ZP/1", Interval(NOW, datetime(2026, 3, 3, 23, tzinfo=UTC)))
    observations: list[Observation] = [
        MachineStatus("laser-2", MachineState.EXECUTING, since, name="TruLaser"),
        ScheduledWork("laser-2", (order,)),
    ]

    offers = {offer.resource: offer for offer in OfferBuilder(config).build(observations, NOW)}

    laser = offers["laser-2"]
    assert laser.kind is ResourceKind.MACHINE
    assert (laser.name, laser.state, laser.state_since) == ("TruLaser", "Executing", since)
    assert laser.free_hours == 160.0 - 32.0
    assert laser.capabilities is None


def test_amounts_give_non_machine_offer(config: AgentConfig) -> None:
    amounts = (Amount("disk_free", 120.5, "GiB", label="/"),)
    observations = [ResourceAmounts("server-1", ResourceKind.IT_CAPACITY, amounts, "Serwer")]

    offers = {offer.resource: offer for offer in OfferBuilder(config).build(observations, NOW)}

    server = offers["server-1"]
    assert (server.kind, server.name, server.amounts) == (
        ResourceKind.IT_CAPACITY,
        "Serwer",
        amounts,
    )
    assert server.free_hours is None
    assert server.horizon is None


def test_supply_stock_gives_supplies_offer(config: AgentConfig) -> None:
    sheets = Amount("stock", 340.0, "sheet", label="DC01 1.5 mm")
    price = Price(42.5, "PLN", "sheet")
    observations = [
        SupplyStock(
            "blacha-dc01",
            "Blacha DC01",
            (sheets,),
            price,
            suppliers=("ArcelorMittal", "Stalprodukt"),
            customers=("formy-sa",),
        )
    ]

    offers = {offer.resource: offer for offer in OfferBuilder(config).build(observations, NOW)}

    supply = offers["blacha-dc01"]
    assert supply.kind is ResourceKind.SUPPLIES
    assert supply.name == "Blacha DC01"
    assert supply.amounts == (sheets,)
    assert supply.price == price
    assert supply.suppliers == ("ArcelorMittal", "Stalprodukt")
    assert supply.customers == ("formy-sa",)
    assert supply.free_hours is None


def test_supply_stocks_merge_per_resource(config: AgentConfig) -> None:
    first = Amount("stock", 340.0, "sheet", label="1.5 mm")
    second = Amount("stock", 120.0, "sheet", label="2 mm")
    observations = [
        SupplyStock("blacha-dc01", None, (first,), suppliers=("Stalprodukt",)),
        SupplyStock("blacha-dc01", "Blacha", (second,), suppliers=("Stalprodukt", "Huta")),
    ]

    (supply,) = [
        offer
        for offer in OfferBuilder(config).build(observations, NOW)
        if offer.resource == "blacha-dc01"
    ]

    assert supply.amounts == (first, second)
    assert supply.name == "Blacha"
    assert supply.suppliers == ("Stalprodukt", "Huta")
    assert supply.customers is None
    assert supply.price is None


def test_withheld_kind_is_left_out_and_logged_once(
    config: AgentConfig, caplog: pytest.LogCaptureFixture
) -> None:
    builder = OfferBuilder(config)
    amounts = (Amount("memory_free", 8.0, "GiB"),)
    observations = [ResourceAmounts("server-1", ResourceKind.IT_CAPACITY, amounts)]
    withheld = {ResourceKind.MACHINE: "production plan not read yet"}

    with caplog.at_level(logging.INFO, logger="agent.offers"):
        first = builder.build(observations, NOW, withheld)
        second = builder.build(observations, NOW, withheld)
        third = builder.build(observations, NOW, {})

    assert [offer.resource for offer in first] == ["server-1"]
    assert [offer.resource for offer in second] == ["server-1"]
    assert [offer.resource for offer in third] == ["cnc-1", "server-1"]
    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        "Withholding machine offers: production plan not read yet",
        "Publishing machine offers again",
    ]


def test_invalid_resource_id_is_skipped(
    config: AgentConfig, caplog: pytest.LogCaptureFixture
) -> None:
    since = datetime(2026, 3, 1, 12, tzinfo=UTC)
    observations = [MachineStatus("hall/1", MachineState.EXECUTING, since)]

    offers = OfferBuilder(config).build(observations, NOW)

    assert [offer.resource for offer in offers] == ["cnc-1"]
    assert "invalid resource id 'hall/1'" in caplog.text
