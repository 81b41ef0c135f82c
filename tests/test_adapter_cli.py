"""``kooperant adapter list``: installed adapter types, their packages and broken entry points.

Third-party packages are installed for a test as a real ``*.dist-info`` folder with an
``entry_points.txt`` on ``sys.path``, which ``importlib.metadata`` reads like any installed
distribution.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adapters.registry import describe_adapters
from kooperant.adapter_cli import EXIT_BROKEN_ENTRY
from kooperant.cli import app

MODULES = ("acme_meters", "acme_broken", "acme_not_adapter")

ACME_METERS = '''
from adapters.base import Adapter, AdapterSettings


class MeterSettings(AdapterSettings):
    path: str


class MeterAdapter(Adapter[MeterSettings]):
    """Report electricity meters read from a gateway file.

    More detail that the listing leaves out.
    """

    settings_model = MeterSettings

    async def start(self) -> None:
        pass

    def collect(self) -> list:
        return []

    async def stop(self) -> None:
        pass
'''


def install_distribution(
    site: Path, name: str, dist_version: str, points: dict[str, str], modules: dict[str, str]
) -> None:
    """Write a distribution's metadata and modules into ``site``, as pip would install them."""
    info = site / f"{name.replace('-', '_')}-{dist_version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {dist_version}\n", encoding="utf-8"
    )
    lines = ["[kooperant.adapters]", *(f"{key} = {value}" for key, value in points.items())]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source, encoding="utf-8")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on ``sys.path`` for test distributions; their modules are unloaded afterwards."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for module in MODULES:
        sys.modules.pop(module, None)


def run_list(*options: str, language: str = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, ["adapter", "list", *options], env={"KOOPERANT_LANG": language}
    )
    return result.exit_code, result.stdout, result.stderr


def listed(stdout: str) -> dict[str, dict[str, str | None]]:
    document = json.loads(stdout)
    assert document["group"] == "kooperant.adapters"
    return {entry["type"]: entry for entry in document["adapters"]}


def test_adapter_list_shows_builtin_adapters() -> None:
    exit_code, stdout, _ = run_list("--json")

    entries = listed(stdout)
    assert exit_code == 0
    assert entries["host"] == {
        "type": "host",
        "package": "kooperant",
        "version": version("kooperant"),
        "class": "adapters.host:HostAdapter",
        "description": "Report the free CPU, memory and disk of this host as IT capacity.",
        "error": None,
    }
    assert {"host", "opcua", "schedule_csv"} <= set(entries)


def test_adapter_list_shows_third_party_package(site: Path) -> None:
    install_distribution(
        site,
        "acme-kooperant-meters",
        "2.3.4",
        {"acme_meter": "acme_meters:MeterAdapter"},
        {"acme_meters": ACME_METERS},
    )

    exit_code, stdout, _ = run_list("--json")

    assert exit_code == 0
    assert listed(stdout)["acme_meter"] == {
        "type": "acme_meter",
        "package": "acme-kooperant-meters",
        "version": "2.3.4",
        "class": "acme_meters:MeterAdapter",
        "description": "Report electricity meters read from a gateway file.",
        "error": None,
    }


def test_adapter_list_table_has_one_row_each(site: Path) -> None:
    install_distribution(
        site,
        "acme-kooperant-meters",
        "2.3.4",
        {"acme_meter": "acme_meters:MeterAdapter"},
        {"acme_meters": ACME_METERS},
    )

    exit_code, stdout, stderr = run_list()

    lines = stdout.splitlines()
    row = next(line for line in lines if line.startswith("acme_meter "))
    assert exit_code == 0
    assert lines[0].split() == ["TYPE", "PACKAGE", "VERSION", "CLASS", "DESCRIPTION"]
    assert row.split()[:4] == [
        "acme_meter",
        "acme-kooperant-meters",
        "2.3.4",
        "acme_meters:MeterAdapter",
    ]
    assert row.endswith("Report electricity meters read from a gateway file.")
    assert stderr == ""


@pytest.fixture
def broken_site(site: Path) -> Path:
    install_distribution(
        site,
        "acme-broken",
        "0.9.0",
        {
            "missing_module": "acme_missing:Adapter",
            "raises_on_import": "acme_broken:BrokenAdapter",
            "not_adapter": "acme_not_adapter:Settings",
        },
        {
            "acme_broken": "raise RuntimeError('gateway library not configured')\n",
            "acme_not_adapter": "class Settings:\n    pass\n",
        },
    )
    return site


def test_adapter_list_reports_broken_entries(broken_site: Path) -> None:
    exit_code, stdout, _ = run_list("--json")

    entries = listed(stdout)
    assert exit_code == EXIT_BROKEN_ENTRY
    assert (
        entries["missing_module"]["error"] == "ModuleNotFoundError: No module named 'acme_missing'"
    )
    assert entries["raises_on_import"]["error"] == "RuntimeError: gateway library not configured"
    assert entries["not_adapter"]["error"] == (
        "TypeError: entry point 'acme_not_adapter:Settings' for adapter 'not_adapter' is not an "
        "Adapter subclass"
    )
    assert entries["not_adapter"]["package"] == "acme-broken"
    assert entries["not_adapter"]["description"] is None
    assert entries["host"]["error"] is None


@pytest.mark.parametrize(
    ("language", "marker", "message"),
    [
        (
            "en",
            "NOT LOADED",
            "Cannot load adapter raises_on_import (acme_broken:BrokenAdapter, "
            "package acme-broken): RuntimeError: gateway library not configured. Reinstall",
        ),
        (
            "pl",
            "NIE WCZYTANO",
            "Nie można wczytać adaptera raises_on_import "
            "(acme_broken:BrokenAdapter, pakiet acme-broken): RuntimeError: gateway library not "
            "configured. Zainstaluj ponownie",
        ),
    ],
)
def test_adapter_list_explains_broken_entry(
    broken_site: Path, language: str, marker: str, message: str
) -> None:
    exit_code, stdout, stderr = run_list(language=language)

    row = next(line for line in stdout.splitlines() if line.startswith("raises_on_import "))
    assert exit_code == EXIT_BROKEN_ENTRY
    assert row.endswith(marker)
    assert message in stderr
    for name in ("missing_module", "raises_on_import", "not_adapter"):
        assert f" {name} (" in stderr


def test_adapter_list_polish_header() -> None:
    exit_code, stdout, _ = run_list(language="pl")

    assert exit_code == 0
    assert stdout.splitlines()[0].split() == ["TYP", "PAKIET", "WERSJA", "KLASA", "OPIS"]


def test_description_drops_code_quotes() -> None:
    entries = {entry.name: entry for entry in describe_adapters()}

    assert entries["edi_epp"].description == (
        "Follow EDI++ exports and report one SupplyStock per item."
    )
