"""The ``jpk_mag`` adapter: current stock of supplies from a JPK_MAG(1) warehouse file.

The adapter follows the JPK_MAG file (a file, or the newest ``*.xml`` in a folder) and, when
configured, an opening stock list. Each new stable version of either is read in a worker thread:
the opening stock first, then every document line of the JPK_MAG file, streamed. The result is
one ``SupplyStock`` per item. A version that cannot be read is logged once, and the last good
stock stays in use (see ``adapters.exports.adapter``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path

from adapters.base import Observation, SourceHealth
from adapters.exports.adapter import ExportAdapter, ExportInput
from adapters.jpk_mag.movements import JpkMagReader
from adapters.jpk_mag.settings import JpkMagSettings
from adapters.jpk_mag.stock import StockBook, build_observations, read_opening_stock

logger = logging.getLogger(__name__)

OPENING_STOCK_KEY = "opening_stock"
NO_OPENING_STOCK = (
    "no opening stock list is configured ('opening_stock'), so every item's stock starts at 0 "
    "on the first day of the JPK period"
)


class JpkMagAdapter(ExportAdapter[JpkMagSettings]):
    """Follow a JPK_MAG file and report the current stock of each item."""

    settings_model = JpkMagSettings
    export_description = "JPK_MAG file"

    def inputs(self) -> list[ExportInput]:
        """Return the JPK_MAG file and, when configured, the opening stock list (required)."""
        inputs = [ExportInput("path", self.path, self.settings.pattern)]
        opening = self.settings.opening_stock
        if opening is not None:
            path = self.resolve_path(opening.path)
            inputs.append(
                ExportInput(
                    OPENING_STOCK_KEY, path, opening.pattern, description="opening stock list"
                )
            )
        return inputs

    def parse(self, files: Mapping[str, Path]) -> list[Observation]:
        book = StockBook()
        opening = self.settings.opening_stock
        if opening is not None:
            read_opening_stock(files[OPENING_STOCK_KEY], opening, book)
        else:
            logger.info("adapter %r: %s", self.name, NO_OPENING_STOCK)

        path = files["path"]
        reader = JpkMagReader(path)
        for movement in reader.movements():
            book.add_movement(movement, path)
        assert reader.header is not None  # movements() raises when the header is missing
        return list(build_observations(book, reader.header, self.settings, path))

    def health(self) -> list[SourceHealth]:
        """Return the base health; its detail notes when stock starts at 0 without a list."""
        health = super().health()
        if self.settings.opening_stock is None and health[0].detail is None:
            health[0] = dataclasses.replace(health[0], detail=NO_OPENING_STOCK)
        return health
