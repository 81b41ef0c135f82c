"""Reading the stock movements of a JPK_MAG(1) file: receipts, issues and transfers per item line.

``JpkMagReader.movements`` streams the file (``adapters.jpk_mag.xml_records``) and yields one
``Movement`` per document line, with the quantity signed as it changes the stock of the file's
warehouse (``Magazyn``): receipts (PZ) add, external and internal issues (WZ, RW) remove.
A transfer (MM) removes, unless its ``DokadMM`` names this warehouse and its ``SkadMM`` does not,
in which case it adds. Memory grows with the number of documents (their number, date and
supplier are kept to resolve lines), not with the number of lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from adapters.errors import ExportFormatError
from adapters.jpk_mag.schema import (
    DOCUMENT_KINDS,
    FORM_CODE,
    NAMESPACE_V1,
    RECEIPT,
    SYSTEM_CODE_V1,
    TRANSFER,
    TRANSFER_DESTINATION,
    TRANSFER_SOURCE,
    VARIANT_V1,
    DocumentKind,
)
from adapters.jpk_mag.xml_records import XmlRecord, read_records

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_XSD_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})(Z|[+-]\d{2}:\d{2})?")
_SUPPORTED = f"{SYSTEM_CODE_V1}, namespace {NAMESPACE_V1}"


@dataclass(frozen=True, slots=True)
class JpkHeader:
    """The period, warehouse and currency that a JPK_MAG file reports."""

    warehouse: str
    date_from: date
    date_to: date
    currency: str


@dataclass(frozen=True, slots=True)
class Movement:
    """One document line: an item's quantity into (positive) or out of the warehouse."""

    kind: DocumentKind
    document: str
    document_date: date
    code: str
    name: str
    quantity: Decimal
    unit: str
    unit_price: Decimal | None
    supplier: str | None
    where: str
    """The line record and its document, e.g. ``JPK/PZ/PZWiersz[3] (PZ 'PZ/7/2026')``."""
    line: int
    unit_element: str
    """The unit element and its document, e.g. ``JPK/PZ/PZWiersz[3]/JednostkaMiaryPZ (...)``."""
    unit_line: int


@dataclass(frozen=True, slots=True)
class _Document:
    date: date
    supplier: str | None
    incoming: bool


class JpkMagReader:
    """Read one JPK_MAG(1) file; ``header`` is set once ``movements`` has passed the header."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.header: JpkHeader | None = None
        self._period: tuple[date, date, str] | None = None
        self._warehouse: str | None = None
        self._documents: dict[str, dict[str, _Document]] = {code: {} for code in DOCUMENT_KINDS}
        self._declared_counts: dict[str, tuple[int, XmlRecord]] = {}
        self._texts: dict[str, str] = {}

    def movements(self) -> Iterator[Movement]:
        """Yield every document line in file order; raise ``ExportFormatError`` on bad input."""
        records = read_records(self.path)
        root = next(records)
        if root.name != "JPK":
            raise ExportFormatError(
                self.path,
                f"not a JPK file: the root element is <{root.name}>; expected <JPK> of the "
                f"JPK_MAG schema ({_SUPPORTED})",
                line=root.line,
            )

        for record in records:
            section = record.path.split("/")[1] if record.path.count("/") == 2 else None
            if record.name == "Naglowek":
                self._read_header(record, root.namespace)
            elif self._period is None:
                raise self._error(record, None, "expected <Naglowek> as the first element")
            elif record.name == "Magazyn":
                self._warehouse = self._required(record, "Magazyn", "warehouse name")
            elif section in DOCUMENT_KINDS:
                movement = self._read_document_record(DOCUMENT_KINDS[section], record)
                if movement is not None:
                    yield movement

        self._check_complete(root)

    def _read_header(self, record: XmlRecord, namespace: str) -> None:
        form = record.text("KodFormularza")
        system_code = record.text("KodFormularza@kodSystemowy")
        variant = record.text("WariantFormularza")
        if form != FORM_CODE:
            raise self._error(
                record,
                "KodFormularza",
                f"this is a {form or 'JPK'} file ({system_code or 'no kodSystemowy'}), not "
                f"JPK_MAG; expected {_SUPPORTED}",
            )
        if system_code != SYSTEM_CODE_V1 or variant != VARIANT_V1:
            raise self._error(
                record,
                "KodFormularza",
                f"{system_code or 'JPK_MAG without kodSystemowy'} (WariantFormularza "
                f"{variant}, namespace {namespace or 'none'}) is not supported yet; this adapter "
                f"reads {_SUPPORTED}. Export the file as JPK_MAG (1) if the ERP system can",
            )

        date_from = self._date(record, "DataOd")
        date_to = self._date(record, "DataDo")
        if date_to < date_from:
            raise self._error(
                record, "DataDo", f"the period ends ({date_to}) before it starts ({date_from})"
            )
        currency = self._required(record, "DomyslnyKodWaluty", "currency code")
        self._period = (date_from, date_to, currency)

    def _read_document_record(self, kind: DocumentKind, record: XmlRecord) -> Movement | None:
        if self.header is None:
            self.header = self._make_header(record)
        if record.name == kind.value_record:
            self._read_document(kind, record)
        elif record.name == kind.line_record:
            return self._read_line(kind, record)
        elif record.name == kind.control_record:
            count = self._decimal(record, kind.count, "document count")
            self._declared_counts[kind.code] = (int(count), record)
        return None

    def _make_header(self, record: XmlRecord) -> JpkHeader:
        if self._warehouse is None:
            raise self._error(
                record, None, "expected <Magazyn> (the warehouse) before the first document"
            )
        assert self._period is not None
        date_from, date_to, currency = self._period
        return JpkHeader(self._warehouse, date_from, date_to, currency)

    def _read_document(self, kind: DocumentKind, record: XmlRecord) -> None:
        number = self._required(record, kind.number, "document number")
        documents = self._documents[kind.code]
        if number in documents:
            raise self._error(record, kind.number, f"{kind.code} {number!r} appears twice")

        document_date = self._date(record, kind.date)
        supplier = None
        if kind.counterparty is not None:
            supplier = record.text(kind.counterparty)
        if supplier is not None:
            supplier = self._shared(supplier)
        incoming = kind is TRANSFER and self._transfer_is_incoming(record)
        documents[number] = _Document(document_date, supplier, incoming)

    def _transfer_is_incoming(self, record: XmlRecord) -> bool:
        assert self.header is not None
        warehouse = _normalize(self.header.warehouse)
        source = _normalize(record.text(TRANSFER_SOURCE) or "")
        destination = _normalize(record.text(TRANSFER_DESTINATION) or "")
        return destination == warehouse and source != warehouse

    def _read_line(self, kind: DocumentKind, record: XmlRecord) -> Movement:
        number = self._required(record, kind.line_number, "document number")
        document = self._documents[kind.code].get(number)
        if document is None:
            raise self._error(
                record,
                kind.line_number,
                f"the line belongs to {kind.code} {number!r}, which has no "
                f"<{kind.value_record}> before it",
            )

        document_name = f"{kind.code} {number!r}"
        quantity = self._decimal(record, kind.quantity, "quantity", document=document_name)
        sign = -kind.sign if document.incoming else kind.sign
        # Only receipt prices are used, so a bad price on an issue does not reject the file.
        price = None
        if kind is RECEIPT and record.text(kind.unit_price) is not None:
            price = self._decimal(record, kind.unit_price, "unit price", document=document_name)
        return Movement(
            kind=kind,
            document=number,
            document_date=document.date,
            code=self._required(record, kind.item_code, "item code", document=document_name),
            name=self._required(record, kind.item_name, "item name", document=document_name),
            quantity=quantity * sign,
            unit=self._shared(self._required(record, kind.unit, "unit", document=document_name)),
            unit_price=price,
            supplier=document.supplier,
            where=f"{record.path} ({document_name})",
            line=record.line,
            unit_element=f"{record.path}/{kind.unit} ({document_name})",
            unit_line=record.line_of(kind.unit),
        )

    def _check_complete(self, root: XmlRecord) -> None:
        if self._period is None:
            raise self._error(root, "Naglowek", "missing; expected the JPK_MAG header")
        if self.header is None:
            self.header = self._make_header(root)

        for code, documents in self._documents.items():
            declared = self._declared_counts.get(code)
            if declared is None:
                if documents:
                    raise self._error(
                        root, f"{code}/{code}Ctrl", "missing; the file may be incomplete"
                    )
                continue
            count, record = declared
            if count != len(documents):
                raise self._error(
                    record,
                    f"Liczba{code}",
                    f"declares {count} {code} documents but the file has {len(documents)}; "
                    "the file is incomplete or inconsistent, so export it again",
                )

    def _required(
        self, record: XmlRecord, name: str, label: str, *, document: str | None = None
    ) -> str:
        text = record.text(name)
        if text is None:
            raise self._error(record, name, f"missing or empty; expected the {label}", document)
        return text

    def _decimal(
        self, record: XmlRecord, name: str, label: str, *, document: str | None = None
    ) -> Decimal:
        text = self._required(record, name, label, document=document)
        if not _DECIMAL.fullmatch(text):
            raise self._error(
                record,
                name,
                f"invalid {label} {text!r}: expected a decimal number with a point, "
                "such as 12 or 1234.5, as the JPK schema requires",
                document,
            )
        return Decimal(text)

    def _date(self, record: XmlRecord, name: str) -> date:
        text = self._required(record, name, "date")
        match = _XSD_DATE.fullmatch(text)
        try:
            if match is None:
                raise ValueError(text)
            return date.fromisoformat(match.group(1))
        except ValueError:
            raise self._error(
                record, name, f"invalid date {text!r}: expected YYYY-MM-DD such as 2026-03-31"
            ) from None

    def _shared(self, text: str) -> str:
        """Return one shared copy of a repeated text (units, suppliers) to save memory."""
        return self._texts.setdefault(text, text)

    def _error(
        self, record: XmlRecord, name: str | None, message: str, document: str | None = None
    ) -> ExportFormatError:
        """Return an error naming the element path, its document, if any, and its line."""
        element = record.path if name is None else f"{record.path}/{name}"
        if document is not None:
            element += f" ({document})"
        line = record.line if name is None else record.line_of(name)
        return ExportFormatError(self.path, f"{element}: {message}", line=line)


def _normalize(text: str) -> str:
    return " ".join(text.split()).casefold()
