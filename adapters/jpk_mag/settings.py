"""Settings of the ``jpk_mag`` adapter: the JPK_MAG file, the opening stock list and reserves."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from adapters.base import AdapterSettings
from adapters.exports.adapter import ExportSettings
from adapters.exports.identifiers import check_resource_map
from adapters.exports.tables import TableFormat


class OpeningStockColumns(AdapterSettings):
    """Header text of each column of the opening stock list; matching ignores case and spaces."""

    code: str = "Kod towaru"
    name: str = Field(default="Nazwa towaru", description="Optional column.")
    quantity: str = "Ilość"
    unit: str = "J.m."


class OpeningStockSettings(TableFormat):
    """The stock of each item at the start of the JPK period (``DataOd``), as CSV or XLSX."""

    path: Path = Field(
        description="The list, or a folder whose newest matching file is read; "
        "relative to the agent config's folder."
    )
    pattern: str = Field(default="*", description="Glob of the files when 'path' is a folder.")
    columns: OpeningStockColumns = Field(default_factory=OpeningStockColumns)


class JpkMagSettings(ExportSettings):
    """Settings of the ``jpk_mag`` adapter."""

    pattern: str = Field(
        default="*.xml", description="Glob of the files to read when 'path' is a folder."
    )
    opening_stock: OpeningStockSettings | None = Field(
        default=None,
        description="Stock at the start of the period; without it every item starts at 0.",
    )
    items: dict[str, str] = Field(
        default_factory=dict,
        description="Item code (KodTowaru) to resource id; other codes are turned into ids.",
    )
    reserve: dict[str, float] = Field(
        default_factory=dict,
        description="Item code to the quantity kept for own use; stock above it is surplus.",
    )
    default_reserve: float | None = Field(
        default=None,
        ge=0,
        description="Reserve of items not listed in 'reserve'; unset means no surplus for them.",
    )
    negative_stock: Literal["zero", "error"] = Field(
        default="zero",
        description="An item whose computed stock is below 0: offer 0 and log a warning, "
        "or reject the file.",
    )

    @field_validator("items")
    @classmethod
    def _check_items(cls, value: dict[str, str]) -> dict[str, str]:
        return check_resource_map(value, "item")

    @field_validator("reserve")
    @classmethod
    def _check_reserve(cls, value: dict[str, float]) -> dict[str, float]:
        for code, quantity in value.items():
            if quantity < 0:
                raise ValueError(f"reserve of item {code!r} is {quantity:g}; it must be at least 0")
        return {code.strip(): quantity for code, quantity in value.items()}
