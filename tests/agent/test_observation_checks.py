"""Observations no offer can carry are left out, logged once, and the other offers go on."""

from __future__ import annotations

import logging
import math
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

import agent.config
from adapters.base import (
    Adapter,
    AdapterSettings,
    MachineStatus,
    Observation,
    ResourceAmounts,
    SupplyStock,
)
from adapters.registry import load_adapter_class
from agent.config import load_config
from agent.observation_checks import observation_problem
from agent.runner import Agent
from kooperant.protocol import Amount, MachineState, Price, ResourceKind

SINCE = datetime(2026, 3, 2, 6, tzinfo=UTC)
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


class OddSettings(AdapterSettings):
    pass


class OddAdapter(Adapter[OddSettings]):
    """Reports one good machine and every kind of observation an offer cannot carry."""

    settings_model = OddSettings
    bad: ClassVar[list[object]] = [
        ResourceAmounts("silos", ResourceKind.STORAGE, (Amount("free", math.inf, "m3"),)),
        MachineStatus("prasa-2", MachineState.EXECUTING, since=datetime(2026, 3, 2, 6)),
        MachineStatus("hala/prasa-3", MachineState.EXECUTING, since=SINCE),
        SupplyStock("blacha", None, (Amount("stock", 3.0, "ark"),), Price(math.nan, "PLN", "ark")),
        {"resource": "not-an-observation"},
    ]

    async def start(self) -> None:
        pass

    def collect(self) -> list[Observation]:
        good = MachineStatus("prasa-1", MachineState.EXECUTING, since=SINCE)
        return [good, *self.bad]  # type: ignore[list-item]

    async def stop(self) -> None:
        pass


@pytest.fixture(autouse=True)
def odd_adapter(monkeypatch: pytest.MonkeyPatch) -> None:
    def lookup(name: str) -> type[Adapter[Any]]:
        return OddAdapter if name == "odd" else load_adapter_class(name)

    monkeypatch.setattr(agent.config, "load_adapter_class", lookup)


@pytest.mark.parametrize(
    ("index", "expected"),
    [
        (
            0,
            "observation (ResourceAmounts) of 'silos': amount 'free' is inf",
        ),
        (1, "[observation.aware_time] times must be timezone-aware"),
        (2, "'hala/prasa-3'"),
        (3, "of 'blacha': price is nan"),
        (4, "[collect.type] collect() must return a list of Observation instances"),
    ],
)
def test_problem_named(index: int, expected: str) -> None:
    problem = observation_problem(OddAdapter.bad[index])

    assert problem is not None
    assert expected in problem


def test_good_observation_has_no_problem() -> None:
    assert observation_problem(MachineStatus("prasa-1", MachineState.EXECUTING, SINCE)) is None


async def test_agent_leaves_out_bad_observations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "policy.yaml").write_text("share:\n  - kind: machine\n    fields: [state]\n")
    config_path = tmp_path / "agent.yaml"
    text = """
        member: acme
        cluster: pomorskie-metal
        broker:
          url: mqtt://127.0.0.1:1
        status:
          enabled: false
        policy: policy.yaml
        adapters:
          - type: odd
            name: liczniki
    """
    config_path.write_text(textwrap.dedent(text))
    runner = Agent(load_config(config_path), clock=lambda: NOW)

    with caplog.at_level(logging.WARNING, logger="agent.runner"):
        await runner.start_adapters()
        try:
            runner.collect_offers()
            snapshot = runner.collect_offers()
        finally:
            await runner.stop_adapters()

    assert [offer.resource for offer in snapshot.offers] == ["prasa-1"]
    for offer in snapshot.offers:
        offer.to_payload()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == len(OddAdapter.bad)
    assert all(message.startswith("Adapter liczniki reported") for message in messages)
