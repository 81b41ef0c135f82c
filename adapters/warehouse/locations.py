"""The storage locations parser: free pallet places and floor area per warehouse and storage type.

Each row of the export is one location (or one rack or zone) with its warehouse code, storage
type, capacity and occupancy, in pallet places, in square metres or both. Free space is capacity
minus occupancy per row. A location with more occupied than its capacity (pallets stood in an
aisle, a booking ahead of the move) counts as full, not as negative space, so it never reduces the
space of other locations. Such rows are counted so that the adapter can log them. The sums per
warehouse and storage type, minus the configured reserve and never below 0, become the offered
amounts. One invalid row fails the whole file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from adapters.base import ResourceAmounts
from adapters.errors import ExportFormatError
from adapters.exports.columns import ColumnLayout, cell_text
from adapters.exports.identifiers import slugify_code
from adapters.exports.tables import TableRow, read_table
from adapters.warehouse.settings import (
    STORAGE_TYPES,
    StorageType,
    WarehouseSettings,
    normalize_word,
)
from kooperant.protocol import Amount, ResourceKind

RESOURCE_CACHE_SIZE = 1000
PALLET_PLACES = "pallet_places"
FLOOR_AREA = "floor_area"
# Each measure: its capacity field, its occupancy field, its unit and its label in messages.
MEASURES = (
    (PALLET_PLACES, "pallets_occupied", "pallets", "pallet places"),
    (FLOOR_AREA, "floor_area_occupied", "m2", "floor area in m2"),
)


@dataclass
class FreeSpace:
    """Free space summed over the rows of one warehouse and storage type, by measure."""

    free: dict[str, float] = field(default_factory=dict)


@dataclass
class LocationsReport:
    """The result of one export: the amounts per warehouse and the rows over capacity."""

    amounts: list[ResourceAmounts]
    rows: int
    over_capacity: int = 0
    first_over_capacity: str | None = None


def read_locations(path: Path, settings: WarehouseSettings) -> LocationsReport:
    """Read the CSV or XLSX export at ``path`` row by row into the free space per warehouse.

    Raises ``ExportFormatError`` for an invalid export and ``OSError`` when the file cannot be
    read. ``settings.path`` is ignored, so a caller can point the same settings at another file.
    """
    return locations_from_rows(read_table(path, settings), path, settings)


def locations_from_rows(
    rows: Iterable[TableRow], path: Path, settings: WarehouseSettings
) -> LocationsReport:
    """Sum a header row and location rows into one ``ResourceAmounts`` per warehouse."""
    iterator: Iterator[TableRow] = iter(rows)
    header = next(iterator, None)
    if header is None:
        raise ExportFormatError(path, "the file is empty; expected a header row and locations")
    layout = LocationLayout(header, path, settings)

    totals: dict[tuple[str, StorageType], FreeSpace] = {}
    report = LocationsReport(amounts=[], rows=0)
    for row in iterator:
        resource, storage_type, free, over = layout.parse_row(row)
        space = totals.setdefault((resource, storage_type), FreeSpace())
        for measure, value in free.items():
            space.free[measure] = space.free.get(measure, 0.0) + value
        report.rows += 1
        if over is not None:
            report.over_capacity += 1
            report.first_over_capacity = report.first_over_capacity or over

    report.amounts = _amounts(totals, settings, path)
    return report


def _amounts(
    totals: dict[tuple[str, StorageType], FreeSpace], settings: WarehouseSettings, path: Path
) -> list[ResourceAmounts]:
    by_resource: dict[str, list[Amount]] = {}
    for resource, storage_type in sorted(
        totals, key=lambda key: (key[0], STORAGE_TYPES.index(key[1]))
    ):
        reserve = settings.reserve.get(storage_type)
        space = totals[(resource, storage_type)]
        amounts = by_resource.setdefault(resource, [])
        for measure, _, unit, label in MEASURES:
            if measure not in space.free:
                continue
            reserved = getattr(reserve, measure) if reserve is not None else 0.0
            value = max(0.0, space.free[measure] - reserved)
            if not math.isfinite(value):
                raise ExportFormatError(
                    path,
                    f"the free {label} of warehouse {resource!r} add up to {value}, which is not "
                    "a finite number; check the export for capacities that are far too large",
                )
            amounts.append(Amount(measure, round(value, 2), unit, label=storage_type))
    return [
        ResourceAmounts(resource=resource, kind=ResourceKind.STORAGE, amounts=tuple(amounts))
        for resource, amounts in by_resource.items()
    ]


class LocationLayout:
    """The columns found in one export's header, and the parser of that export's rows."""

    def __init__(self, header: TableRow, path: Path, settings: WarehouseSettings) -> None:
        optional = ["location", "storage_type", *(name for m in MEASURES for name in m[:2])]
        self.columns = ColumnLayout(header, path, settings.columns, optional=optional)
        self.path = path
        self.header = header
        self.settings = settings
        self.words = settings.storage_type_words()
        self._resources: dict[str, str] = {}
        if not self.columns.has("storage_type") and settings.default_storage_type is None:
            self._missing(
                "storage_type",
                f"missing column {settings.columns.storage_type!r} (when every location has "
                "the same type, set 'default_storage_type' instead)",
            )
        self.measures = [measure for measure in MEASURES if self._check_pair(*measure[:2])]
        if not self.measures:
            names = settings.columns
            self._missing(
                "pallet_places",
                f"no capacity column: expected {names.pallet_places!r} with "
                f"{names.pallets_occupied!r}, or {names.floor_area!r} with "
                f"{names.floor_area_occupied!r}",
            )

    def _check_pair(self, capacity: str, occupied: str) -> bool:
        """Return whether the export has the pair; one column without the other is an error."""
        has_capacity = self.columns.has(capacity)
        if has_capacity != self.columns.has(occupied):
            present, absent = (capacity, occupied) if has_capacity else (occupied, capacity)
            absent_header = getattr(self.settings.columns, absent)
            present_header = getattr(self.settings.columns, present)
            self._missing(
                absent, f"missing column {absent_header!r}, which {present_header!r} needs"
            )
        return has_capacity

    def _missing(self, field_name: str, message: str) -> None:
        found = ", ".join(repr(cell_text(cell)) for cell in self.header.cells)
        raise ExportFormatError(
            self.path,
            f"{message}; the header has {found}. Rename the column in the export or set "
            f"'columns.{field_name}' in the adapter settings",
            line=self.header.line,
            column=getattr(self.settings.columns, field_name),
        )

    def parse_row(self, row: TableRow) -> tuple[str, StorageType, dict[str, float], str | None]:
        """Return the warehouse id, storage type and free space by measure of one row.

        The fourth value describes the row for the log when it is over capacity, else it is None.
        """
        resource = self._resource(row)
        storage_type = self._storage_type(row)
        free: dict[str, float] = {}
        over: str | None = None
        for capacity_field, occupied_field, _, label in self.measures:
            capacity = self.columns.optional_number(row, capacity_field, label, minimum=0)
            occupied = self.columns.optional_number(
                row, occupied_field, f"occupied {label}", minimum=0
            )
            if capacity is None:
                if occupied is not None:
                    raise self.columns.error(
                        row,
                        capacity_field,
                        f"empty {label} next to an occupancy of {occupied:g}; "
                        "expected the capacity of the location",
                    )
                continue
            occupied = occupied or 0.0
            free[capacity_field] = max(0.0, capacity - occupied)
            if occupied > capacity and over is None:
                over = self._over_capacity(row, label, capacity, occupied)

        if not free:
            names = self.settings.columns
            capacity_headers = " or ".join(
                repr(getattr(names, measure[0])) for measure in self.measures
            )
            raise self.columns.error(
                row, self.measures[0][0], f"no capacity: expected a number in {capacity_headers}"
            )
        return resource, storage_type, free, over

    def _resource(self, row: TableRow) -> str:
        code = self.columns.text(row, "warehouse", "warehouse code")
        resource = self._resources.get(code)
        if resource is None:
            resource = self.settings.warehouses.get(code) or slugify_code(code)
            # An export names a few warehouses on many rows; the bound only guards odd files.
            if len(self._resources) < RESOURCE_CACHE_SIZE:
                self._resources[code] = resource
        if not resource:
            raise self.columns.error(
                row,
                "warehouse",
                f"warehouse code {code!r} cannot be turned into a resource id; "
                "map it in 'warehouses' in the adapter settings",
            )
        return resource

    def _storage_type(self, row: TableRow) -> StorageType:
        word = cell_text(self.columns.cell(row, "storage_type"))
        default = self.settings.default_storage_type
        if not word:
            if default is not None:
                return default
            raise self.columns.error(
                row,
                "storage_type",
                "empty storage type; write it in the export or set 'default_storage_type' "
                "(ambient, cold or hazardous) in the adapter settings",
            )
        storage_type = self.words.get(normalize_word(word))
        if storage_type is None:
            raise self.columns.error(
                row,
                "storage_type",
                f"unknown storage type {word!r}: add it to 'storage_types' in the adapter "
                f"settings as ambient, cold or hazardous, e.g. storage_types: {{{word}: cold}}",
            )
        return storage_type

    def _over_capacity(self, row: TableRow, label: str, capacity: float, occupied: float) -> str:
        location = cell_text(self.columns.cell(row, "location"))
        where = f"location {location!r} on line {row.line}" if location else f"line {row.line}"
        return f"{where}: occupied {label} {occupied:g} > capacity {capacity:g}"
