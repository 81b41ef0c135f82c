"""The ``edi_epp`` adapter: stock and open orders per item from EDI++ (.epp) exports.

EDI++ is the exchange format of InsERT Subiekt GT and nexo. The adapter reads every matching
file of the configured folder (Subiekt writes one file per document) or only the newest one, and
an optional opening stock list, and offers each item's stock, incoming supplies and expected stock.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from adapters.base import Observation
from adapters.edi_epp.documents import walk_file
from adapters.edi_epp.ledger import StockLedger
from adapters.edi_epp.opening_stock import read_opening_stock
from adapters.edi_epp.settings import EdiEppSettings
from adapters.errors import ExportFormatError
from adapters.exports.adapter import ExportAdapter, ExportInput
from adapters.exports.sources import matching_files

OPENING_STOCK_KEY = "opening_stock"


class EdiEppAdapter(ExportAdapter[EdiEppSettings]):
    """Follow EDI++ exports and report one ``SupplyStock`` per item."""

    settings_model = EdiEppSettings
    export_description = "EDI++ export"

    def inputs(self) -> list[ExportInput]:
        documents = ExportInput(
            "path",
            self.path,
            self.settings.pattern,
            whole_folder=self.settings.read_folder == "all",
        )
        opening = self.settings.opening_stock
        if opening is None:
            return [documents]
        return [
            documents,
            ExportInput(OPENING_STOCK_KEY, self.resolve_path(opening.path), opening.pattern),
        ]

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        return list(read_epp_stock(files["path"], self.settings, files.get(OPENING_STOCK_KEY)))


def read_epp_stock(
    path: Path, settings: EdiEppSettings, opening_stock: Path | None = None
) -> list[Observation]:
    """Read the EDI++ files at ``path`` (a file or a folder) and return the supplies per item.

    Raises ``ExportFormatError`` naming the file, line and field of the first invalid record.
    """
    ledger = StockLedger(settings)
    if opening_stock is not None and settings.opening_stock is not None:
        read_opening_stock(opening_stock, settings.opening_stock, ledger)

    files = matching_files(path, settings.pattern)
    if not files:
        raise ExportFormatError(path, f"no file matching {settings.pattern!r}")
    for file in files:
        walk_file(file, settings, ledger)
    return list(ledger.supplies())
