"""The ``stock`` adapter: surplus stock from an ERP stock list (stany magazynowe), CSV or XLSX.

Every new version of the export is read once it has stopped changing, and each item with stock
above its reserve becomes a ``SupplyStock`` with the amount ``surplus`` and, when the export has
prices, the unit price. The settings and the parser ``read_stock`` live in
``adapters.stock_list``. When a new version is invalid, the last good list stays in use.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adapters.base import Observation
from adapters.exports.adapter import ExportAdapter
from adapters.stock_list import StockColumns, StockSettings, read_stock

__all__ = ["StockAdapter", "StockColumns", "StockSettings", "read_stock"]


class StockAdapter(ExportAdapter[StockSettings]):
    """Follow a stock list export and report the surplus of each item."""

    settings_model = StockSettings
    export_description = "stock list"

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        return list(read_stock(files["path"], self.settings))
