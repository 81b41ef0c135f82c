"""The stock list (stany magazynowe): settings and parser of an ERP export of stock per item.

Each row is the stock of one item, in one warehouse when the export has a warehouse column: item
code, name, quantity, unit and the reserve the company keeps back (rezerwa or stan minimalny),
optionally a unit price. Rows of the same item code are added up. What stays above the reserve is
the surplus, and only items with a surplus are reported. One invalid row fails the whole file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, field_validator

from adapters.base import AdapterSettings, SupplyStock
from adapters.errors import ExportFormatError
from adapters.exports.columns import ColumnLayout
from adapters.exports.identifiers import check_resource_map, slugify_code
from adapters.exports.tables import TableRow, TableSettings, read_table
from kooperant.protocol import IDENTIFIER_PATTERN, Amount, Price

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
QUANTITY_DECIMALS = 3
PRICE_DECIMALS = 4
OPTIONAL_COLUMNS = ("reserve", "price", "warehouse")
# Written after prices by Polish spreadsheets in currency format, as in "142,50 zł".
CURRENCY_MARKS = ("zł", "zl", "PLN")


class StockColumns(AdapterSettings):
    """Header text of each column; matching ignores case and outer spaces.

    ``reserve`` accepts a list of alternative header texts, because ERP systems call the stock
    kept back either a reserve (Rezerwa) or a minimum stock (Stan minimalny).
    """

    code: str = "Indeks"
    name: str = "Nazwa"
    quantity: str = "Ilość"
    unit: str = "J.m."
    reserve: str | tuple[str, ...] = ("Rezerwa", "Stan minimalny")
    price: str = Field(default="Cena", description="Optional unit price, net.")
    warehouse: str = Field(default="Magazyn", description="Optional warehouse code or name.")

    @field_validator("reserve")
    @classmethod
    def _check_reserve(cls, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
        if isinstance(value, tuple) and not value:
            raise ValueError("give at least one header text for the reserve column")
        return value


class StockSettings(TableSettings):
    """Settings of the ``stock`` adapter."""

    columns: StockColumns = Field(default_factory=StockColumns)
    items: dict[str, str] = Field(
        default_factory=dict,
        description="ERP item code to resource id; other codes are turned into ids.",
    )
    reserve: float = Field(
        default=0,
        ge=0,
        description="Reserve of an item whose rows have no reserve column or an empty cell.",
    )
    min_surplus: float = Field(
        default=0, ge=0, description="Report only items with at least this surplus, in its unit."
    )
    currency: str = Field(default="PLN", description="ISO 4217 code of the prices in the export.")
    warehouses: tuple[str, ...] = Field(
        default=(),
        description="Count only the rows of these warehouses; empty means every warehouse.",
    )

    @field_validator("items")
    @classmethod
    def _check_items(cls, value: dict[str, str]) -> dict[str, str]:
        return check_resource_map(value, "item")

    @field_validator("currency")
    @classmethod
    def _check_currency(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{3}", value):
            raise ValueError(f"currency {value!r} is not an ISO 4217 code such as PLN or EUR")
        return value


@dataclass(slots=True)
class _ItemTotal:
    """The rows of one item code added up, with the line of each first value for errors."""

    code: str
    line: int
    resource: str
    unit: str
    name: str | None = None
    quantity: float = 0.0
    reserve: float | None = None
    price_sum: float = 0.0
    price_weight: float = 0.0
    first_price: float | None = None

    def add_price(self, price: float, quantity: float) -> None:
        if self.first_price is None:
            self.first_price = price
        if quantity > 0:
            self.price_sum += price * quantity
            self.price_weight += quantity

    def price(self) -> float | None:
        """Return the quantity-weighted mean price over the rows with stock, else the first."""
        if self.price_weight > 0:
            return self.price_sum / self.price_weight
        return self.first_price


def read_stock(path: Path, settings: StockSettings) -> list[SupplyStock]:
    """Read the stock list at ``path`` into one ``SupplyStock`` per item with a surplus.

    The result is sorted by resource id. Raises ``ExportFormatError`` for an invalid export and
    ``OSError`` when the file cannot be read. ``settings.path`` is ignored.
    """
    rows = read_table(path, settings)
    header = next(rows, None)
    if header is None:
        raise ExportFormatError(
            path, "the file is empty; expected a header row and one row per item"
        )
    layout = ColumnLayout(header, path, settings.columns, optional=OPTIONAL_COLUMNS)
    if settings.warehouses and not layout.has("warehouse"):
        raise ExportFormatError(
            path,
            f"'warehouses' is set but the header has no column {settings.columns.warehouse!r}; "
            "set 'columns.warehouse' or remove 'warehouses' from the adapter settings",
            line=header.line,
        )

    totals = _add_up(_StockRows(layout, settings), rows)
    return [
        stock
        for total in sorted(totals.values(), key=lambda item: item.resource)
        if (stock := _surplus_stock(total, settings)) is not None
    ]


def _add_up(reader: _StockRows, rows: Iterator[TableRow]) -> dict[str, _ItemTotal]:
    totals: dict[str, _ItemTotal] = {}
    codes_by_resource: dict[str, _ItemTotal] = {}
    for row in rows:
        if not reader.counts(row):
            continue
        values = reader.values(row)
        total = totals.get(values.code)
        if total is None:
            resource = reader.resource(row, values.code)
            total = _ItemTotal(values.code, row.line, resource, values.unit)
            other = codes_by_resource.setdefault(resource, total)
            if other is not total:
                raise reader.error(
                    row,
                    "code",
                    f"item codes {other.code!r} (line {other.line}) and {values.code!r} both give "
                    f"the resource id {resource!r}; map one of them to another id in 'items'",
                )
            totals[values.code] = total
        reader.add(row, values, total)
    return totals


@dataclass(frozen=True, slots=True)
class _RowValues:
    code: str
    name: str | None
    quantity: float
    unit: str
    reserve: float | None
    price: float | None


class _StockRows:
    """Reader of one row's values, which adds them to the total of the row's item."""

    def __init__(self, layout: ColumnLayout, settings: StockSettings) -> None:
        self.layout = layout
        self.settings = settings
        self.warehouses = {name.strip().casefold() for name in settings.warehouses}
        self.price_suffixes = (settings.currency, *CURRENCY_MARKS)

    def counts(self, row: TableRow) -> bool:
        """Return whether the row's warehouse is one of ``warehouses`` (always, if none is set)."""
        if not self.warehouses:
            return True
        warehouse = self.layout.optional_text(row, "warehouse") or ""
        return warehouse.casefold() in self.warehouses

    def values(self, row: TableRow) -> _RowValues:
        """Read the row's cells in the column order of the default layout.

        So a row with several bad cells is reported at the leftmost one in a default export.
        """
        layout = self.layout
        return _RowValues(
            code=layout.text(row, "code", "item code"),
            name=layout.optional_text(row, "name"),
            quantity=layout.number(row, "quantity", "quantity"),
            unit=layout.text(row, "unit", "unit"),
            reserve=layout.optional_number(row, "reserve", "reserve", minimum=0),
            price=layout.optional_number(
                row, "price", "price", minimum=0, suffixes=self.price_suffixes
            ),
        )

    def resource(self, row: TableRow, code: str) -> str:
        resource = self.settings.items.get(code) or slugify_code(code)
        if not _IDENTIFIER.fullmatch(resource):
            raise self.error(
                row,
                "code",
                f"item code {code!r} cannot be turned into a resource id; "
                "map it in 'items' in the adapter settings",
            )
        return resource

    def add(self, row: TableRow, values: _RowValues, total: _ItemTotal) -> None:
        if _unit_key(values.unit) != _unit_key(total.unit):
            raise self.error(
                row,
                "unit",
                f"item {total.code!r} is in {values.unit!r} here but in {total.unit!r} on line "
                f"{total.line}; rows of one item must use the same unit",
            )

        total.quantity += values.quantity
        if values.reserve is not None:
            total.reserve = (total.reserve or 0.0) + values.reserve
        if values.price is not None:
            total.add_price(values.price, values.quantity)
        if total.name is None:
            total.name = values.name

    def error(self, row: TableRow, field: str, message: str) -> ExportFormatError:
        return self.layout.error(row, field, message)


def _unit_key(unit: str) -> str:
    """Return the unit in the form used for comparing rows: ``Szt.`` and ``szt`` are one unit."""
    return unit.strip().rstrip(".").casefold()


def _surplus_stock(total: _ItemTotal, settings: StockSettings) -> SupplyStock | None:
    reserve = settings.reserve if total.reserve is None else total.reserve
    surplus = round(total.quantity - reserve, QUANTITY_DECIMALS)
    if surplus <= 0 or surplus < settings.min_surplus:
        return None

    price = total.price()
    return SupplyStock(
        resource=total.resource,
        name=total.name,
        amounts=(Amount("surplus", surplus, total.unit),),
        price=None
        if price is None
        else Price(round(price, PRICE_DECIMALS), settings.currency, total.unit),
    )
