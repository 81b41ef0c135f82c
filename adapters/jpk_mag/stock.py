"""Current stock per item from an opening stock list and the movements of a JPK_MAG file.

stock = opening stock + receipts (PZ) - external issues (WZ) - internal issues (RW) -/+ transfers
(MM). Quantities are summed as ``Decimal`` and rounded to 6 decimal places, the precision of JPK
quantities. One item has one unit: a document or list row with another unit is an error, because
adding kilograms to pieces gives a meaningless stock.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from adapters.base import SupplyStock
from adapters.errors import ExportFormatError
from adapters.exports.columns import ColumnLayout
from adapters.exports.identifiers import slugify_code
from adapters.exports.tables import read_table
from adapters.jpk_mag.movements import JpkHeader, Movement
from adapters.jpk_mag.settings import JpkMagSettings, OpeningStockSettings
from kooperant.protocol import Amount, Price

logger = logging.getLogger(__name__)

QUANTITY_PLACES = Decimal("0.000001")
MAX_LISTED_ITEMS = 5


@dataclass(frozen=True, slots=True)
class Origin:
    """The place a value was read from: file, element path or row, and line."""

    path: Path
    where: str
    line: int

    def __str__(self) -> str:
        return f"{self.where} in {self.path.name} line {self.line}"


@dataclass(slots=True)
class ItemBalance:
    """The running stock of one item code and what is known about it."""

    code: str
    name: str | None
    unit: str
    unit_origin: Origin
    quantity: Decimal = Decimal(0)
    last_receipt: tuple[date, Decimal] | None = None
    suppliers: dict[str, None] = field(default_factory=dict)
    unit_from_jpk: bool = False


class StockBook:
    """Balances of all items, built from the opening stock and then the JPK movements."""

    def __init__(self) -> None:
        self.items: dict[str, ItemBalance] = {}

    def add_opening(
        self, code: str, name: str | None, quantity: Decimal, unit: str, origin: Origin
    ) -> None:
        if code in self.items:
            raise ExportFormatError(
                origin.path,
                f"item {code!r} is listed twice; the first is at {self.items[code].unit_origin}",
                line=origin.line,
            )
        self.items[code] = ItemBalance(code, name, unit, origin, quantity)

    def add_movement(self, movement: Movement, path: Path) -> None:
        origin = Origin(path, movement.where, movement.line)
        balance = self.items.get(movement.code)
        if balance is None:
            balance = ItemBalance(movement.code, movement.name, movement.unit, origin)
            self.items[movement.code] = balance
        elif _unit_key(balance.unit) != _unit_key(movement.unit):
            raise ExportFormatError(
                path,
                f"{movement.unit_element}: item {movement.code!r} is counted in "
                f"{movement.unit!r} here but in {balance.unit!r} at {balance.unit_origin}; one "
                "item needs one unit, so fix the unit in the ERP system or the opening stock list",
                line=movement.unit_line,
            )

        # The JPK file's first spelling of the unit wins over the opening stock list's, so that
        # "ark" on one line and "ARK" on a later one do not change the reported unit. The name
        # comes from the latest line, because an item renamed in the ERP shows its new name.
        balance.quantity += movement.quantity
        if not balance.unit_from_jpk:
            balance.unit = movement.unit
            balance.unit_from_jpk = True
        balance.name = movement.name
        if movement.kind.code == "PZ" and movement.quantity > 0:
            self._record_receipt(balance, movement)

    @staticmethod
    def _record_receipt(balance: ItemBalance, movement: Movement) -> None:
        if movement.supplier is not None:
            balance.suppliers[movement.supplier] = None
        if movement.unit_price is None:
            return
        # The latest document date wins; a later line of the same date replaces an earlier one.
        if balance.last_receipt is None or movement.document_date >= balance.last_receipt[0]:
            balance.last_receipt = (movement.document_date, movement.unit_price)


def read_opening_stock(path: Path, settings: OpeningStockSettings, book: StockBook) -> None:
    """Add every row of the opening stock list at ``path`` to ``book``."""
    rows = read_table(path, settings)
    header = next(rows, None)
    if header is None:
        raise ExportFormatError(
            path, "the opening stock list is empty; expected a header row and one row per item"
        )
    layout = ColumnLayout(header, path, settings.columns, optional=("name",))
    for row in rows:
        code = layout.text(row, "code", "item code")
        quantity = layout.number(row, "quantity", "quantity", minimum=0)
        unit = layout.text(row, "unit", "unit")
        name = layout.optional_text(row, "name")
        origin = Origin(path, f"row of item {code!r}", row.line)
        book.add_opening(code, name, Decimal(str(quantity)), unit, origin)


def build_observations(
    book: StockBook, header: JpkHeader, settings: JpkMagSettings, jpk_path: Path
) -> list[SupplyStock]:
    """Return one ``SupplyStock`` per item, sorted by resource id."""
    resources: dict[str, ItemBalance] = {}
    negative: list[ItemBalance] = []
    for balance in book.items.values():
        resource = _resource_id(balance, settings)
        if resource in resources:
            other = resources[resource]
            raise ExportFormatError(
                balance.unit_origin.path,
                f"items {other.code!r} and {balance.code!r} both become resource id "
                f"{resource!r}; map one of them to another id in 'items'",
                line=balance.unit_origin.line,
            )
        resources[resource] = balance
        if balance.quantity < 0:
            negative.append(balance)

    if negative:
        _report_negative(negative, settings, jpk_path)
    return [
        _supply(resource, balance, header, settings)
        for resource, balance in sorted(resources.items())
    ]


def _resource_id(balance: ItemBalance, settings: JpkMagSettings) -> str:
    resource = settings.items.get(balance.code) or slugify_code(balance.code)
    if not resource:
        raise ExportFormatError(
            balance.unit_origin.path,
            f"item code {balance.code!r} at {balance.unit_origin.where} cannot be turned into a "
            "resource id; map it in 'items' in the adapter settings",
            line=balance.unit_origin.line,
        )
    return resource


def _report_negative(negative: list[ItemBalance], settings: JpkMagSettings, path: Path) -> None:
    listed = ", ".join(
        f"{item.code!r} {_rounded(item.quantity):g} {item.unit}"
        for item in negative[:MAX_LISTED_ITEMS]
    )
    more = len(negative) - MAX_LISTED_ITEMS
    if more > 0:
        listed += f" and {more} more"
    summary = (
        f"items with a computed stock below 0: {len(negative)} ({listed}); more was issued than "
        "the opening stock and receipts hold, so the opening stock list is missing or too low"
    )
    if settings.negative_stock == "error":
        raise ExportFormatError(path, f"{summary}. Set 'negative_stock: zero' to offer 0 instead")
    logger.warning("%s: %s; these items are offered with stock 0", path, summary)


def _supply(
    resource: str, balance: ItemBalance, header: JpkHeader, settings: JpkMagSettings
) -> SupplyStock:
    stock = max(_rounded(balance.quantity), 0.0)
    amounts = [Amount("stock", stock, balance.unit)]
    reserve = settings.reserve.get(balance.code, settings.default_reserve)
    if reserve is not None:
        amounts.append(Amount("surplus", round(max(stock - reserve, 0.0), 6), balance.unit))

    price = None
    if balance.last_receipt is not None:
        price = Price(float(balance.last_receipt[1]), header.currency, balance.unit)
    return SupplyStock(
        resource=resource,
        name=balance.name,
        amounts=tuple(amounts),
        price=price,
        suppliers=tuple(balance.suppliers),
    )


def _rounded(quantity: Decimal) -> float:
    return float(quantity.quantize(QUANTITY_PLACES))


def _unit_key(unit: str) -> str:
    """Return the unit as compared: case, spaces and a final dot are ignored ("Szt." = "szt")."""
    return "".join(unit.split()).casefold().rstrip(".")
