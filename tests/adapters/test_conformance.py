"""Every built-in adapter passes the conformance kit; one entry per adapter type in ``CASES``.

An adapter added to ``[project.entry-points."kooperant.adapters"]`` of pyproject.toml without an
entry here fails ``test_every_builtin_adapter_has_case``.
"""

from __future__ import annotations

import asyncio
import importlib
import tomllib
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from adapters.base import Observation, ResourceAmounts, ScheduledWork, SupplyStock
from adapters.edi_epp import EdiEppAdapter
from adapters.host import HostAdapter
from adapters.it_team import ItTeamAdapter
from adapters.jpk_mag import JpkMagAdapter
from adapters.opcua import OpcUaAdapter
from adapters.registry import ENTRY_POINT_GROUP
from adapters.schedule import ScheduleAdapter
from adapters.stock import StockAdapter
from adapters.warehouse import WarehouseAdapter
from kooperant.adapter_kit import (
    AdapterCase,
    check_construction,
    check_life_cycle,
    check_settings,
    check_stop_after_failed_start,
    check_stop_without_start,
)
from kooperant.net import free_tcp_port
from kooperant.protocol import ResourceKind
from tests.conftest import REPO_ROOT

FIXTURES = REPO_ROOT / "tests" / "fixtures"
SCHEDULE_FIXTURES = FIXTURES / "schedule"
# Export adapters poll quickly here, so that their first read lands within the kit's wait.
FAST_EXPORT = {"poll_interval_seconds": 0.1, "stable_seconds": 0}


def host_reports_capacity(observations: list[Observation]) -> bool:
    return any(
        isinstance(item, ResourceAmounts)
        and item.resource == "kit-host"
        and {amount.quantity for amount in item.amounts} == {"cpu_free", "memory_free", "disk_free"}
        for item in observations
    )


def plan_is_read(observations: list[Observation]) -> bool:
    resources = {item.resource for item in observations if isinstance(item, ScheduledWork)}
    return resources == {"cnc-5ax-01", "laser-02", "prasa-03"}


def amounts_of_kind(kind: ResourceKind, resource: str) -> Callable[[list[Observation]], bool]:
    def reported(observations: list[Observation]) -> bool:
        return any(
            isinstance(item, ResourceAmounts) and item.kind is kind and item.resource == resource
            for item in observations
        )

    return reported


def supplies_include(*resources: str) -> Callable[[list[Observation]], bool]:
    def reported(observations: list[Observation]) -> bool:
        found = {item.resource for item in observations if isinstance(item, SupplyStock)}
        return set(resources) <= found

    return reported


SCHEDULE_CASE = AdapterCase(
    adapter_class=ScheduleAdapter,
    settings={
        "path": "exports/plan.csv",
        "machines": {"FREZ-01": "cnc-5ax-01"},
        **FAST_EXPORT,
    },
    files={"exports/plan.csv": (SCHEDULE_FIXTURES / "plan.csv").read_bytes()},
    expect=plan_is_read,
)

CASES: dict[str, AdapterCase] = {
    "host": AdapterCase(
        adapter_class=HostAdapter,
        settings={"resource": "kit-host", "sample_interval_seconds": 0.1},
        expect=host_reports_capacity,
    ),
    "schedule": SCHEDULE_CASE,
    # The type name from before the adapter read XLSX; the same class.
    "schedule_csv": SCHEDULE_CASE,
    "warehouse": AdapterCase(
        adapter_class=WarehouseAdapter,
        settings={"path": "exports", "pattern": "*.csv", **FAST_EXPORT},
        files={
            "exports/lokalizacje.csv": (FIXTURES / "warehouse" / "lokalizacje.csv").read_bytes()
        },
        expect=amounts_of_kind(ResourceKind.STORAGE, "mag-ldz"),
    ),
    "stock": AdapterCase(
        adapter_class=StockAdapter,
        settings={"path": "stany.csv", **FAST_EXPORT},
        files={"stany.csv": (FIXTURES / "stock" / "stany.csv").read_bytes()},
        expect=supplies_include("bl-dc01-2"),
    ),
    "it_team": AdapterCase(
        adapter_class=ItTeamAdapter,
        settings={"path": "kalendarz.csv", "resource": "zespol-automatyki", **FAST_EXPORT},
        files={"kalendarz.csv": (FIXTURES / "it_team" / "kalendarz.csv").read_bytes()},
        expect=amounts_of_kind(ResourceKind.IT_TEAM, "zespol-automatyki"),
    ),
    "jpk_mag": AdapterCase(
        adapter_class=JpkMagAdapter,
        settings={
            "path": "jpk",
            "opening_stock": {"path": "stan.csv"},
            **FAST_EXPORT,
        },
        files={
            "jpk/magazyn_2026_03.xml": (FIXTURES / "jpk_mag" / "magazyn_2026_03.xml").read_bytes(),
            "stan.csv": (FIXTURES / "jpk_mag" / "stan_poczatkowy_cp1250.csv").read_bytes(),
        },
        expect=supplies_include("bl-dc01-1.5", "klej-pu-310"),
    ),
    "edi_epp": AdapterCase(
        adapter_class=EdiEppAdapter,
        settings={"path": "subiekt", **FAST_EXPORT},
        files={"subiekt/dokumenty.epp": (FIXTURES / "edi_epp" / "dokumenty.epp").read_bytes()},
        expect=supplies_include("bl-dc01-1.5"),
    ),
    # A port nothing listens on: start() must return and leave the adapter retrying.
    "opcua": AdapterCase(
        adapter_class=OpcUaAdapter,
        settings={
            "url": f"opc.tcp://127.0.0.1:{free_tcp_port()}",
            "timeout_seconds": 1,
            "reconnect_min_seconds": 0.1,
            "reconnect_max_seconds": 0.2,
        },
    ),
}


def builtin_adapter_types() -> dict[str, str]:
    """Return type name -> class path of kooperant's own adapters, declared or installed."""
    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = dict(pyproject["project"]["entry-points"][ENTRY_POINT_GROUP])
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.dist is not None and point.dist.name == "kooperant":
            declared.setdefault(point.name, point.value)
    return declared


def test_every_builtin_adapter_has_case() -> None:
    missing = sorted(set(builtin_adapter_types()) - set(CASES))

    assert missing == []


@pytest.mark.parametrize(("name", "class_path"), sorted(builtin_adapter_types().items()))
def test_case_uses_registered_class(name: str, class_path: str) -> None:
    module_name, _, attribute = class_path.partition(":")
    registered = getattr(importlib.import_module(module_name), attribute)

    assert name in CASES
    assert CASES[name].adapter_class is registered


@pytest.fixture(params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> AdapterCase:
    return CASES[request.param]


def test_adapter_settings_model_conforms(case: AdapterCase) -> None:
    check_settings(case.adapter_class, case.settings)


def test_adapter_init_does_no_io(case: AdapterCase, tmp_path: Path) -> None:
    asyncio.run(check_construction(case, tmp_path))


def test_adapter_life_cycle_conforms(case: AdapterCase, tmp_path: Path) -> None:
    observations = asyncio.run(check_life_cycle(case, tmp_path))

    if case.expect is not None:
        assert case.expect(observations)


def test_adapter_starts_without_source_files(case: AdapterCase, tmp_path: Path) -> None:
    asyncio.run(check_life_cycle(case, tmp_path, with_files=False))


def test_adapter_stops_without_start(case: AdapterCase, tmp_path: Path) -> None:
    asyncio.run(check_stop_without_start(case, tmp_path))


def test_adapter_stops_after_failed_start(case: AdapterCase, tmp_path: Path) -> None:
    asyncio.run(check_stop_after_failed_start(case, tmp_path))
