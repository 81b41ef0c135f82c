"""The benchmarked export formats: file name, sample writer and the adapter that parses the file.

Adapters are named by module and class, so that only the child process that measures a format
imports its adapter, and the parent's memory and imports never mix into a figure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export_benchmark.sample_documents import write_edi_epp, write_jpk_mag
from export_benchmark.sample_tables import (
    write_it_team_csv,
    write_schedule_csv,
    write_schedule_xlsx,
    write_stock_csv,
    write_warehouse_csv,
)

Writer = Callable[[Path, int, int], int]


@dataclass(frozen=True, slots=True)
class ExportFormat:
    """One benchmarked format.

    ``writer(path, target_bytes, items)`` returns the record count: data rows, or document lines
    (positions) for JPK_MAG and EDI++.
    """

    name: str
    file_name: str
    writer: Writer
    adapter: str
    """``module:Class`` of the adapter whose ``parse`` reads the file."""
    settings: dict[str, Any] = field(default_factory=dict)
    """Settings besides ``path``; the defaults of each adapter match the generated files."""


FORMATS = {
    item.name: item
    for item in (
        ExportFormat(
            "schedule_csv",
            "plan_cp1250.csv",
            write_schedule_csv,
            "adapters.schedule:ScheduleAdapter",
        ),
        ExportFormat(
            "schedule_xlsx", "plan.xlsx", write_schedule_xlsx, "adapters.schedule:ScheduleAdapter"
        ),
        ExportFormat(
            "warehouse",
            "lokalizacje.csv",
            write_warehouse_csv,
            "adapters.warehouse:WarehouseAdapter",
        ),
        ExportFormat("stock", "stany.csv", write_stock_csv, "adapters.stock:StockAdapter"),
        ExportFormat("it_team", "zespoly.csv", write_it_team_csv, "adapters.it_team:ItTeamAdapter"),
        ExportFormat("jpk_mag", "JPK_MAG.xml", write_jpk_mag, "adapters.jpk_mag:JpkMagAdapter"),
        ExportFormat(
            "edi_epp",
            "dokumenty_cp1250.epp",
            write_edi_epp,
            "adapters.edi_epp.adapter:EdiEppAdapter",
        ),
    )
}
XLSX_FORMATS = frozenset({"schedule_xlsx"})
