"""The optional opening stock list: the stock of each item when the exported period began.

EDI++ has no stock-level document, so without this list the stock is only the net movement of
the exported documents. The list is a CSV or XLSX table with one row per item (and warehouse).
"""

from __future__ import annotations

from pathlib import Path

from adapters.edi_epp.ledger import StockLedger
from adapters.edi_epp.settings import OpeningStockSettings
from adapters.errors import ExportFormatError
from adapters.exports.columns import ColumnLayout
from adapters.exports.tables import read_table


def read_opening_stock(path: Path, settings: OpeningStockSettings, ledger: StockLedger) -> None:
    """Add every row of the opening stock list at ``path`` to ``ledger``."""
    rows = read_table(path, settings)
    header = next(rows, None)
    if header is None:
        raise ExportFormatError(
            path, "the opening stock list is empty; expected a header row and one row per item"
        )
    layout = ColumnLayout(header, path, settings.columns, optional=("name", "unit", "warehouse"))
    for row in rows:
        ledger.add_opening_stock(
            path,
            row.line,
            layout.text(row, "item_code", "item code"),
            layout.number(row, "quantity", "stock quantity"),
            warehouse=layout.optional_text(row, "warehouse"),
            unit=layout.optional_text(row, "unit"),
            name=layout.optional_text(row, "name"),
        )
