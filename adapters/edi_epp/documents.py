"""The meaning of EDI++ records: the file's [INFO], document headers, positions and the catalogue.

``walk_file`` reads one file and hands every counted document position and catalogue item to a
``DocumentSink``. A document is a [NAGLOWEK] line followed by a [ZAWARTOSC] section. Only types
with a role in ``document_roles`` are interpreted, so that documents of other layouts pass unread
(cash and bank documents have another header). A catalogue is a [NAGLOWEK] line of one keyword
such as "TOWARY" followed by its records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from adapters.edi_epp.records import EppLine, choose_codec, read_lines
from adapters.edi_epp.settings import DocumentRole, EdiEppSettings
from adapters.errors import ExportFormatError

_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_DATE = re.compile(r"\d{14}")
MAX_QUANTITY = 1e12
ITEM_CATALOGUE = "TOWARY"


@dataclass(frozen=True, slots=True)
class DocumentHeader:
    """The fields of a document header that decide how its positions count."""

    line: int
    document_type: str
    role: DocumentRole
    status: int
    order_status: int
    number: str
    contractor: str | None
    warehouse: str
    target_warehouse: str | None
    issue_date: datetime
    position_count: int | None


@dataclass(frozen=True, slots=True)
class DocumentPosition:
    """One position of a document: an item and its quantity in the item's stock unit.

    ``unit`` is the position's unit only when its quantity in that unit equals the quantity in
    the stock unit, because only then is it the stock unit. Otherwise it is empty.
    """

    line: int
    item_type: int
    item_code: str
    unit: str
    quantity: float


class DocumentSink(Protocol):
    def add_position(self, path: Path, header: DocumentHeader, position: DocumentPosition) -> None:
        """Count one position of a document of a known role."""

    def add_catalogue_item(self, code: str, name: str, unit: str) -> None:
        """Record the name and stock unit of an item from the item catalogue."""


class FieldReader:
    """Typed access to the fields of one record, with errors that name the file, line and field."""

    def __init__(self, path: Path, record: EppLine, kind: str) -> None:
        assert record.fields is not None
        self.path = path
        self.line = record.line
        self.fields = record.fields
        self.kind = kind

    def require(self, positions: dict[str, int]) -> None:
        """Check that the record has every field in ``positions`` (name -> 1-based position)."""
        name, highest = max(positions.items(), key=lambda item: item[1])
        if len(self.fields) < highest:
            raise self.error(
                highest,
                name,
                f"the {self.kind} has {len(self.fields)} fields, expected at least {highest}; "
                "the line is cut off, or the export has another layout (set 'fields')",
            )

    def text(self, position: int) -> str:
        return self.fields[position - 1].strip()

    def required_text(self, position: int, name: str) -> str:
        value = self.text(position)
        if not value:
            raise self.error(position, name, f"empty {name}; expected a value")
        return value

    def number(self, position: int, name: str) -> float:
        value = self.text(position)
        if not _NUMBER.fullmatch(value):
            raise self.error(
                position, name, f"invalid {name} {value!r}: expected a number such as 12.5000"
            )
        number = float(value)
        if abs(number) > MAX_QUANTITY:
            raise self.error(
                position, name, f"invalid {name} {value!r}: expected at most {MAX_QUANTITY:g}"
            )
        return number

    def whole_number(self, position: int, name: str) -> int:
        value = self.text(position)
        if not _WHOLE_NUMBER.fullmatch(value):
            raise self.error(
                position, name, f"invalid {name} {value!r}: expected a whole number such as 1"
            )
        return int(value)

    def date(self, position: int, name: str) -> datetime:
        value = self.text(position)
        try:
            if not _DATE.fullmatch(value):
                raise ValueError(value)
            return datetime.strptime(value, "%Y%m%d%H%M%S")
        except ValueError as error:
            raise self.error(
                position,
                name,
                f"invalid {name} {value!r}: expected a date as yyyymmddhhnnss, "
                "such as 20261204000000",
            ) from error

    def error(self, position: int, name: str, message: str) -> ExportFormatError:
        return ExportFormatError(
            self.path, message, line=self.line, column=f"field {position}: {name}"
        )


class _FileWalk:
    """The state of reading one file: its warehouse and the section being read."""

    def __init__(self, path: Path, settings: EdiEppSettings, sink: DocumentSink) -> None:
        self.path = path
        self.settings = settings
        self.sink = sink
        self.warehouse: str | None = None
        self.header_line: int | None = None
        self.header: DocumentHeader | None = None
        self.catalogue: str | None = None
        self.content_line: int | None = None
        self.positions = 0

    def feed(self, record: EppLine) -> None:
        if record.fields is None:
            self._start_section(record)
        elif record.section == "INFO":
            self._read_info(record)
        elif record.section == "NAGLOWEK":
            self._read_header(record)
        else:
            self._read_content(record)

    def _start_section(self, record: EppLine) -> None:
        if record.section == "NAGLOWEK":
            self.finish()
            self.header_line = record.line
        elif record.section == "ZAWARTOSC":
            if self.header_line is None or self.content_line is not None:
                raise ExportFormatError(
                    self.path,
                    "[ZAWARTOSC] without a [NAGLOWEK] line before it; expected [NAGLOWEK] with "
                    "one header line, then [ZAWARTOSC]",
                    line=record.line,
                )
            self.content_line = record.line

    def _read_info(self, record: EppLine) -> None:
        if self.warehouse is not None:
            raise ExportFormatError(
                self.path, "[INFO] has more than one line; expected one", line=record.line
            )
        fields = self.settings.fields.info
        reader = FieldReader(self.path, record, "[INFO] line")
        reader.require(
            {
                "format version": fields.version,
                "code page": fields.code_page,
                "warehouse code": fields.warehouse,
            }
        )
        version = reader.text(fields.version)
        if not version.startswith("1."):
            raise reader.error(
                fields.version,
                "format version",
                f"unsupported EDI++ format version {version!r}; expected 1.xx such as 1.05",
            )
        code_page = reader.text(fields.code_page)
        if code_page and code_page != "1250":
            raise reader.error(
                fields.code_page,
                "code page",
                f"the file declares code page {code_page}; only 1250 (Windows) is supported, "
                "so export it again with the Windows code page",
            )
        self.warehouse = reader.text(fields.warehouse)

    def _read_header(self, record: EppLine) -> None:
        if self.header_line is None or self.header is not None or self.catalogue is not None:
            raise ExportFormatError(
                self.path,
                "a second line in [NAGLOWEK]; a header has one line, expected [ZAWARTOSC]",
                line=record.line,
            )
        if self.warehouse is None:
            raise ExportFormatError(
                self.path, "[NAGLOWEK] before the [INFO] line", line=record.line
            )
        assert record.fields is not None
        if len(record.fields) == 1:
            self.catalogue = record.fields[0].strip().upper()
            return
        self.header = read_header(self.path, record, self.settings, self.warehouse)
        if self.header is None:
            self.catalogue = ""

    def _read_content(self, record: EppLine) -> None:
        self.positions += 1
        if self.catalogue == ITEM_CATALOGUE:
            fields = self.settings.fields.catalogue
            reader = FieldReader(self.path, record, "item catalogue line")
            reader.require(
                {"item code": fields.item_code, "name": fields.name, "unit": fields.unit}
            )
            self.sink.add_catalogue_item(
                reader.required_text(fields.item_code, "item code"),
                reader.text(fields.name),
                reader.text(fields.unit),
            )
        elif self.header is not None:
            position = read_position(self.path, record, self.settings)
            self.sink.add_position(self.path, self.header, position)

    def finish(self) -> None:
        """Check the document that ends here and reset for the next [NAGLOWEK]."""
        header = self.header
        if header is not None and self.content_line is None:
            raise ExportFormatError(
                self.path,
                f"document {header.number!r} has no [ZAWARTOSC] section; expected its "
                "positions after the header (the file may be cut off)",
                line=header.line,
            )
        if header is not None and header.position_count not in (None, self.positions):
            position = self.settings.fields.header.position_count
            raise ExportFormatError(
                self.path,
                f"document {header.number!r} announces {header.position_count} positions, "
                f"but its [ZAWARTOSC] has {self.positions} lines (the file may be cut off)",
                line=header.line,
                column=f"field {position}: number of positions",
            )
        if self.header_line is not None and header is None and self.catalogue is None:
            raise ExportFormatError(
                self.path, "[NAGLOWEK] without a header line", line=self.header_line
            )
        self.header_line = self.content_line = None
        self.header = None
        self.catalogue = None
        self.positions = 0


def read_header(
    path: Path, record: EppLine, settings: EdiEppSettings, warehouse: str
) -> DocumentHeader | None:
    """Read a document header; None for a type without a role, whose layout may differ."""
    fields = settings.fields.header
    reader = FieldReader(path, record, "document header")
    reader.require({"document type": fields.document_type})
    document_type = reader.required_text(fields.document_type, "document type").upper()
    role = settings.document_roles.get(document_type, "ignore")
    if role == "ignore":
        return None

    named = {
        "status": fields.status,
        "order status": fields.order_status,
        "full number": fields.full_number,
        "target warehouse": fields.target_warehouse,
        "contractor short name": fields.contractor_short_name,
        "contractor name": fields.contractor_name,
        "issue date": fields.issue_date,
    }
    if fields.position_count is not None:
        named["number of positions"] = fields.position_count
    reader.require(named)

    count = None
    if fields.position_count is not None:
        count = reader.whole_number(fields.position_count, "number of positions")
    contractor = reader.text(fields.contractor_short_name)
    target = reader.text(fields.target_warehouse)
    if role == "transfer" and not target:
        raise reader.error(
            fields.target_warehouse,
            "target warehouse",
            f"empty target warehouse of the transfer {document_type}; expected a warehouse code",
        )
    return DocumentHeader(
        line=record.line,
        document_type=document_type,
        role=role,
        status=reader.whole_number(fields.status, "status"),
        order_status=reader.whole_number(fields.order_status, "order status"),
        number=reader.text(fields.full_number) or f"line {record.line}",
        contractor=contractor or reader.text(fields.contractor_name) or None,
        warehouse=warehouse,
        target_warehouse=target or None,
        issue_date=reader.date(fields.issue_date, "issue date"),
        position_count=count,
    )


def read_position(path: Path, record: EppLine, settings: EdiEppSettings) -> DocumentPosition:
    """Read one position of a document."""
    fields = settings.fields.position
    reader = FieldReader(path, record, "document position")
    reader.require(
        {
            "item type": fields.item_type,
            "item code": fields.item_code,
            "unit": fields.unit,
            "quantity in unit": fields.quantity_in_unit,
            "quantity in stock unit": fields.quantity,
        }
    )
    quantity = reader.number(fields.quantity, "quantity in stock unit")
    in_unit = reader.number(fields.quantity_in_unit, "quantity in unit")
    return DocumentPosition(
        line=record.line,
        item_type=reader.whole_number(fields.item_type, "item type"),
        item_code=reader.required_text(fields.item_code, "item code"),
        unit=reader.text(fields.unit) if in_unit == quantity else "",
        quantity=quantity,
    )


def walk_file(path: Path, settings: EdiEppSettings, sink: DocumentSink) -> None:
    """Read one EDI++ file and hand its positions and catalogue items to ``sink``."""
    codec = choose_codec(path, settings.encoding)
    walk = _FileWalk(path, settings, sink)
    for record in read_lines(path, codec):
        walk.feed(record)
    walk.finish()
    if walk.warehouse is None:
        raise ExportFormatError(path, "[INFO] has no line; expected the file's header line")
