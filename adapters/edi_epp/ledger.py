"""Stock, orders and suppliers per item, summed from EDI++ positions and the opening stock.

Per item, ``stock`` is the opening stock plus receipts minus issues of the offered warehouses.
``incoming`` is the quantity of open orders to suppliers (ZD) and ``reserved`` the quantity of
open orders from customers (ZK). ``expected_stock`` is stock + incoming - reserved. A transfer
(MM) issues from the file's warehouse and receives into its target warehouse, so it cancels out
when both are offered.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from adapters.base import SupplyStock
from adapters.edi_epp.documents import DocumentHeader, DocumentPosition
from adapters.edi_epp.settings import EdiEppSettings
from adapters.errors import ExportFormatError
from adapters.exports.identifiers import slugify_code
from kooperant.protocol import IDENTIFIER_PATTERN, Amount

logger = logging.getLogger(__name__)

_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)
DECIMALS = 3


@dataclass(slots=True)
class ItemTotals:
    """Quantities of one item summed from the documents; ``stock`` maps warehouse codes to them."""

    first_path: Path
    first_line: int
    stock: defaultdict[str, float]
    incoming: float = 0.0
    reserved: float = 0.0
    unit: str | None = None
    name: str | None = None


class StockLedger:
    """Sum positions per item; implements ``DocumentSink`` of ``adapters.edi_epp.documents``."""

    def __init__(self, settings: EdiEppSettings) -> None:
        self.settings = settings
        self.items: dict[str, ItemTotals] = {}
        self.suppliers: defaultdict[str, set[str]] = defaultdict(set)
        self.catalogue: dict[str, tuple[str, str]] = {}

    def add_catalogue_item(self, code: str, name: str, unit: str) -> None:
        self.catalogue[code] = (name, unit)

    def add_opening_stock(
        self,
        path: Path,
        line: int,
        code: str,
        quantity: float,
        *,
        warehouse: str | None,
        unit: str | None,
        name: str | None,
    ) -> None:
        totals = self._totals(code, path, line)
        totals.stock[warehouse or ""] += quantity
        totals.unit = totals.unit or unit
        totals.name = totals.name or name

    def add_position(self, path: Path, header: DocumentHeader, position: DocumentPosition) -> None:
        if position.item_type not in self.settings.stock_item_types:
            return
        if header.role in ("supplier_order", "customer_order"):
            self._add_order(path, header, position)
        else:
            self._add_movement(path, header, position)

    def _add_order(self, path: Path, header: DocumentHeader, position: DocumentPosition) -> None:
        if header.order_status not in self.settings.open_order_statuses:
            return
        totals = self._totals(position.item_code, path, position.line)
        totals.unit = totals.unit or position.unit or None
        if header.role == "supplier_order":
            totals.incoming += position.quantity
            self._add_supplier(position.item_code, header)
        else:
            totals.reserved += position.quantity

    def _add_movement(self, path: Path, header: DocumentHeader, position: DocumentPosition) -> None:
        if header.status not in self.settings.stock_statuses:
            return
        since = self.settings.documents_from
        if since is not None and header.issue_date.date() < since:
            return
        totals = self._totals(position.item_code, path, position.line)
        totals.unit = totals.unit or position.unit or None
        if header.role == "receipt":
            totals.stock[header.warehouse] += position.quantity
            self._add_supplier(position.item_code, header)
        elif header.role == "issue":
            totals.stock[header.warehouse] -= position.quantity
        else:
            assert header.target_warehouse is not None
            totals.stock[header.warehouse] -= position.quantity
            totals.stock[header.target_warehouse] += position.quantity

    def _add_supplier(self, code: str, header: DocumentHeader) -> None:
        if header.contractor:
            self.suppliers[code].add(header.contractor)

    def _totals(self, code: str, path: Path, line: int) -> ItemTotals:
        totals = self.items.get(code)
        if totals is None:
            totals = ItemTotals(path, line, defaultdict(float))
            self.items[code] = totals
        return totals

    def supplies(self) -> list[SupplyStock]:
        """Return one ``SupplyStock`` per item, sorted by resource id."""
        result: list[SupplyStock] = []
        negative: list[str] = []
        for code, totals in self.items.items():
            stock = self._offered_stock(totals)
            if stock < 0:
                negative.append(code)
            result.append(self._supply(code, totals, stock))
        if negative:
            # NOTE: a negative sum means that receipts before the exported period are missing;
            # the offer shows 0 rather than an invalid negative amount.
            logger.warning(
                "EDI++ documents issue more than they receive for %d item(s), first %r; their "
                "stock is offered as 0. Set 'opening_stock' to the stock at the period's start",
                len(negative),
                sorted(negative)[0],
            )
        return sorted(result, key=lambda supply: supply.resource)

    def _offered_stock(self, totals: ItemTotals) -> float:
        wanted = self.settings.warehouses
        return sum(
            quantity
            for warehouse, quantity in totals.stock.items()
            if not wanted or warehouse in wanted or warehouse == ""
        )

    def _supply(self, code: str, totals: ItemTotals, stock: float) -> SupplyStock:
        name, catalogue_unit = self.catalogue.get(code, ("", ""))
        # NOTE: "szt" (pieces) is a guess for an item whose stock unit no line states.
        unit = catalogue_unit or totals.unit or "szt"
        stock = max(0.0, stock)
        expected = max(0.0, stock + totals.incoming - totals.reserved)
        amounts = (
            Amount("stock", _round(stock), unit),
            Amount("incoming", _round(totals.incoming), unit),
            Amount("expected_stock", _round(expected), unit),
        )
        return SupplyStock(
            resource=self._resource_id(code, totals),
            name=name or totals.name or None,
            amounts=amounts,
            suppliers=tuple(sorted(self.suppliers.get(code, ()))),
        )

    def _resource_id(self, code: str, totals: ItemTotals) -> str:
        resource = self.settings.items.get(code) or slugify_code(code)
        if not _IDENTIFIER.fullmatch(resource):
            raise ExportFormatError(
                totals.first_path,
                f"item code {code!r} gives the invalid resource id {resource!r}; map the code "
                "to an id of letters, digits, '.', '_' or '-' in the 'items' setting",
                line=totals.first_line,
            )
        return resource


def _round(value: float) -> float:
    # Adding 0.0 turns -0.0 into 0.0.
    return round(value, DECIMALS) + 0.0
