"""Settings of the ``warehouse`` adapter: columns, storage type words, ids and reserves."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from adapters.base import AdapterSettings
from adapters.exports.identifiers import check_resource_map
from adapters.exports.polish_csv import normalize_header
from adapters.exports.tables import TableSettings

StorageType = Literal["ambient", "cold", "hazardous"]
STORAGE_TYPES: tuple[StorageType, ...] = ("ambient", "cold", "hazardous")

# Words that Polish warehouse systems write for each storage type, matched after normalize_word.
DEFAULT_STORAGE_TYPE_WORDS: dict[str, StorageType] = {
    "ambient": "ambient",
    "suchy": "ambient",
    "magazyn suchy": "ambient",
    "normalny": "ambient",
    "standardowy": "ambient",
    "zwykły": "ambient",
    "cold": "cold",
    "chłodnia": "cold",
    "chłodniczy": "cold",
    "chłodzony": "cold",
    "mroźnia": "cold",
    "mroźniczy": "cold",
    "hazardous": "hazardous",
    "adr": "hazardous",
    "niebezpieczne": "hazardous",
    "materiały niebezpieczne": "hazardous",
}

_SPACES = re.compile(r"\s+")


def normalize_word(text: str) -> str:
    """Return a storage type word in the form used for matching: case folded, single spaces."""
    return _SPACES.sub(" ", text).strip().casefold()


class WarehouseColumns(AdapterSettings):
    """Header text of each column; matching ignores case and outer spaces.

    ``location`` is optional and only names a location in log lines. ``storage_type`` may be
    absent when ``default_storage_type`` is set. Each capacity column needs its occupancy column,
    and an export has at least one of the pairs: pallet places, or floor area in m².
    """

    warehouse: str = "Magazyn"
    location: str = "Lokalizacja"
    storage_type: str = "Typ składowania"
    pallet_places: str = "Miejsca paletowe"
    pallets_occupied: str = "Zajęte miejsca"
    floor_area: str = Field(default="Powierzchnia m2", description="Capacity in square metres.")
    floor_area_occupied: str = Field(
        default="Zajęta powierzchnia m2", description="Occupied area in square metres."
    )


class StorageReserve(AdapterSettings):
    """Space of one storage type that the owner keeps back in each warehouse; never offered."""

    pallet_places: float = Field(default=0.0, ge=0, le=1e9)
    floor_area: float = Field(default=0.0, ge=0, le=1e12, description="Square metres.")


class WarehouseSettings(TableSettings):
    """Settings of the ``warehouse`` adapter."""

    columns: WarehouseColumns = Field(default_factory=WarehouseColumns)
    storage_types: dict[str, StorageType] = Field(
        default_factory=dict,
        description="Storage type words of the export, added to DEFAULT_STORAGE_TYPE_WORDS.",
    )
    default_storage_type: StorageType | None = Field(
        default=None,
        description="Storage type of rows with an empty type cell, or of every row when the "
        "export has no type column; without it both are errors.",
    )
    warehouses: dict[str, str] = Field(
        default_factory=dict,
        description="Warehouse code of the export to resource id; other codes are turned into ids.",
    )
    reserve: dict[StorageType, StorageReserve] = Field(default_factory=dict)

    @field_validator("storage_types")
    @classmethod
    def _check_storage_types(cls, value: dict[str, StorageType]) -> dict[str, StorageType]:
        words: dict[str, StorageType] = {}
        for word, storage_type in value.items():
            normalized = normalize_word(word)
            if not normalized:
                raise ValueError("a storage type word is empty; write the word of the export")
            words[normalized] = storage_type
        return words

    @field_validator("warehouses")
    @classmethod
    def _check_warehouses(cls, value: dict[str, str]) -> dict[str, str]:
        return check_resource_map(value, "warehouse")

    @model_validator(mode="after")
    def _check_columns(self) -> WarehouseSettings:
        # Two fields on one column would count the same number as capacity and occupancy.
        seen: dict[str, str] = {}
        for field, header in self.columns.model_dump().items():
            key = normalize_header(header)
            if key in seen:
                raise ValueError(
                    f"columns.{seen[key]} and columns.{field} both name the column {header!r}"
                )
            seen[key] = field
        return self

    def storage_type_words(self) -> dict[str, StorageType]:
        """Return every known storage type word: the defaults, then those of the settings."""
        return {**DEFAULT_STORAGE_TYPE_WORDS, **self.storage_types}
