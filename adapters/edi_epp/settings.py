"""Settings of the ``edi_epp`` adapter: where the EDI++ files are and how their fields are read.

Field positions are 1-based, as in InsERT's description of the format ("Komunikacja – Struktura
danych EDI++", format version 1.05): [INFO] table 2, document header table 3, document positions
table 7 and the item catalogue (TOWARY) table 13. They are settings, so an export of another
version or another program with shifted fields can still be read.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from adapters.base import AdapterSettings
from adapters.exports.adapter import ExportSettings
from adapters.exports.identifiers import check_resource_map
from adapters.exports.tables import TableFormat

DocumentRole = Literal["receipt", "issue", "transfer", "supplier_order", "customer_order", "ignore"]
EppEncoding = Literal["cp1250", "auto", "utf-8", "utf-8-sig"]

# FZ and FS (invoices) and PA (receipts) are left out: the header does not say whether the
# invoice moved stock itself or was issued for a PZ or WZ, and counting both would double it.
DEFAULT_DOCUMENT_ROLES: dict[str, DocumentRole] = {
    "PZ": "receipt",
    "VPZ": "receipt",
    "PW": "receipt",
    "ZW": "receipt",
    "WZ": "issue",
    "VWZ": "issue",
    "RW": "issue",
    "MMW": "transfer",
    "MM": "transfer",
    "ZD": "supplier_order",
    "ZK": "customer_order",
}


class InfoFields(AdapterSettings):
    """Positions of the fields read from the [INFO] line."""

    version: int = Field(default=1, ge=1, le=500)
    code_page: int = Field(default=3, ge=1, le=500)
    warehouse: int = Field(default=12, ge=1, le=500)


class HeaderFields(AdapterSettings):
    """Positions of the fields read from a document's [NAGLOWEK] line."""

    document_type: int = Field(default=1, ge=1, le=500)
    status: int = Field(default=2, ge=1, le=500)
    order_status: int = Field(
        default=2,
        ge=1,
        le=500,
        description="The field whose value decides whether an order is open; see "
        "'open_order_statuses'.",
    )
    full_number: int = Field(default=7, ge=1, le=500)
    target_warehouse: int = Field(default=11, ge=1, le=500)
    contractor_short_name: int = Field(default=13, ge=1, le=500)
    contractor_name: int = Field(default=14, ge=1, le=500)
    issue_date: int = Field(default=22, ge=1, le=500)
    position_count: int | None = Field(
        default=25,
        ge=1,
        le=500,
        description="The number of positions the header announces; null to not check it.",
    )


class PositionFields(AdapterSettings):
    """Positions of the fields read from a document's [ZAWARTOSC] lines."""

    item_type: int = Field(default=2, ge=1, le=500)
    item_code: int = Field(default=3, ge=1, le=500)
    unit: int = Field(default=10, ge=1, le=500)
    quantity_in_unit: int = Field(default=11, ge=1, le=500)
    quantity: int = Field(
        default=12, ge=1, le=500, description="The quantity in the item's stock unit."
    )


class CatalogueFields(AdapterSettings):
    """Positions of the fields read from the item catalogue (a [NAGLOWEK] "TOWARY" section)."""

    item_code: int = Field(default=2, ge=1, le=500)
    name: int = Field(default=5, ge=1, le=500)
    unit: int = Field(default=10, ge=1, le=500)


class EppFields(AdapterSettings):
    """Field positions of each kind of line."""

    info: InfoFields = Field(default_factory=InfoFields)
    header: HeaderFields = Field(default_factory=HeaderFields)
    position: PositionFields = Field(default_factory=PositionFields)
    catalogue: CatalogueFields = Field(default_factory=CatalogueFields)


class OpeningStockColumns(AdapterSettings):
    """Header text of each column of the opening stock list; matching ignores case."""

    item_code: str = "Symbol"
    quantity: str = "Stan"
    name: str | None = "Nazwa"
    unit: str | None = "J.m."
    warehouse: str | None = "Magazyn"


class OpeningStockSettings(TableFormat):
    """An optional CSV or XLSX list of the stock at the start of the documents' period."""

    path: Path = Field(description="A file, or a folder whose newest matching file is read.")
    pattern: str = "*"
    columns: OpeningStockColumns = Field(default_factory=OpeningStockColumns)


class EdiEppSettings(ExportSettings):
    """Settings of the ``edi_epp`` adapter."""

    pattern: str = Field(default="*.epp", description="Glob of the EDI++ files in the folder.")
    read_folder: Literal["all", "newest"] = Field(
        default="all",
        description="'all': every matching file of the folder (one file per document); "
        "'newest': only the newest file (one file per export).",
    )
    encoding: EppEncoding = Field(
        default="cp1250",
        description="cp1250 as the format prescribes (UTF-8 with a BOM is accepted too); "
        "auto also accepts UTF-8 without a BOM.",
    )
    document_roles: dict[str, DocumentRole] = Field(
        default_factory=lambda: dict(DEFAULT_DOCUMENT_ROLES),
        description="Document type -> role; types not listed are ignored.",
    )
    stock_statuses: list[int] = Field(
        default_factory=lambda: [1, 3],
        description="Statuses of stock documents that moved stock: 1 executed, 3 booked.",
    )
    open_order_statuses: list[int] = Field(
        default_factory=lambda: [1],
        description="Values of the 'order_status' field of an open (not realised) order.",
    )
    stock_item_types: list[int] = Field(
        default_factory=lambda: [1, 4],
        description="Item types that have stock: 1 goods, 4 packaging (2 service, 8 set).",
    )
    warehouses: list[str] = Field(
        default_factory=list,
        description="Warehouse codes whose stock is offered; empty for all warehouses summed.",
    )
    documents_from: date | None = Field(
        default=None,
        description="Stock documents issued before this date are skipped, because the "
        "opening stock already includes them.",
    )
    items: dict[str, str] = Field(
        default_factory=dict,
        description="Item code -> resource id; other codes are turned into ids.",
    )
    fields: EppFields = Field(default_factory=EppFields)
    opening_stock: OpeningStockSettings | None = None

    @field_validator("items")
    @classmethod
    def _check_items(cls, value: dict[str, str]) -> dict[str, str]:
        return check_resource_map(value, "item")

    @field_validator("document_roles")
    @classmethod
    def _upper_case_types(cls, value: dict[str, DocumentRole]) -> dict[str, DocumentRole]:
        return {key.strip().upper(): role for key, role in value.items()}
