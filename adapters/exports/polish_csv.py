"""Reading CSV exports in the dialect of Polish spreadsheets and ERP systems.

Polish Excel and most Polish ERP systems write CSV with ``;`` between fields (``,`` is the decimal
separator), dates as ``dd.mm.yyyy hh:mm`` and text in Windows-1250 or UTF-8, sometimes with a BOM.
Every function raises ``ExportFormatError`` naming the file, and the line and column where known.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from adapters.errors import ExportFormatError

Encoding = Literal["auto", "utf-8", "utf-8-sig", "cp1250"]
DELIMITER_CANDIDATES = (";", ",", "\t")
BOM = "\ufeff"


@dataclass(frozen=True, slots=True)
class CsvRow:
    """One non-empty record of a CSV file and the line on which it starts (1-based)."""

    line: int
    cells: tuple[str, ...]


def decode_export(data: bytes, path: Path, encoding: Encoding) -> str:
    """Decode an export's bytes. With ``auto``, try UTF-8 with BOM, then UTF-8, then Windows-1250.

    A file with NUL bytes, UTF-16 or damaged, is rejected with any setting, because UTF-8 and
    Windows-1250 would decode them as characters.
    """
    _reject_nul_bytes(data, path)

    if encoding == "cp1250":
        return _decode(data, path, encoding, hint="export as UTF-8 or set 'encoding: auto'")
    if encoding != "auto":
        return _decode(data, path, encoding, hint="set 'encoding: auto' or 'encoding: cp1250'")
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data, path, "utf-8-sig", hint="fix the file's encoding")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    return _decode(data, path, "cp1250", hint="export the file as UTF-8 or Windows-1250")


def _reject_nul_bytes(data: bytes, path: Path) -> None:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or looks_like_utf16(data):
        raise ExportFormatError(path, utf16_message())

    offset = data.find(b"\x00")
    if offset >= 0:
        raise ExportFormatError(
            path,
            f"the file contains a NUL byte at offset {offset}, so it is damaged or not a text "
            "CSV export; check the export settings and export the file again",
            line=data.count(b"\n", 0, offset) + 1,
        )


_UTF16_SAMPLE_BYTES = 512


def utf16_message() -> str:
    """Return the error message for a UTF-16 export."""
    return (
        "the file is UTF-16 encoded; export it as UTF-8 or Windows-1250 "
        "(in Excel: 'CSV UTF-8' or 'CSV (separated by semicolons)')"
    )


def looks_like_utf16(data: bytes) -> bool:
    """Return whether most 2-byte units at the start pair a NUL with a non-NUL byte in one order.

    That is the pattern of UTF-16 LE or BE text of mostly ASCII letters, as in Polish exports.
    """
    sample = data[:_UTF16_SAMPLE_BYTES]
    units = [sample[index : index + 2] for index in range(0, len(sample) - 1, 2)]
    if not units:
        return False
    little_endian = sum(1 for unit in units if unit[0] != 0 and unit[1] == 0)
    big_endian = sum(1 for unit in units if unit[0] == 0 and unit[1] != 0)
    return max(little_endian, big_endian) * 2 > len(units)


def _decode(data: bytes, path: Path, encoding: str, *, hint: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start : error.start + 1]
        raise ExportFormatError(
            path,
            f"byte 0x{byte.hex()} at offset {error.start} is not valid {encoding}; {hint}",
            line=line,
        ) from error


def detect_delimiter(text: str, path: Path) -> str:
    """Return the candidate delimiter that occurs most often in the first non-empty line."""
    header = next((line for line in text.splitlines() if line.strip()), "")
    return delimiter_of(header, path)


def delimiter_of(header: str, path: Path) -> str:
    """Return the candidate delimiter that occurs most often in the ``header`` line of ``path``."""
    counts = {delimiter: header.count(delimiter) for delimiter in DELIMITER_CANDIDATES}
    best = max(counts, key=lambda delimiter: counts[delimiter])
    if counts[best] == 0:
        raise ExportFormatError(
            path,
            "cannot detect the delimiter: the header has no ';', ',' or tab; "
            "set 'delimiter' in the adapter settings",
            line=1,
        )
    return best


def read_rows(text: str, path: Path, delimiter: str) -> Iterator[CsvRow]:
    """Yield the records of ``text``, skipping blank ones such as a trailing ``;;;;``."""
    return csv_records(io.StringIO(text, newline=""), path, delimiter)


def csv_records(lines: Iterable[str], path: Path, delimiter: str) -> Iterator[CsvRow]:
    """Yield the non-blank records of ``lines`` (a text file or stream opened with newline="")."""
    reader = csv.reader(lines, delimiter=delimiter)
    next_line = 1
    try:
        for cells in reader:
            start_line = next_line
            next_line = reader.line_num + 1
            if any(cell.strip() for cell in cells):
                yield CsvRow(start_line, tuple(cells))
    except csv.Error as error:
        raise ExportFormatError(path, f"invalid CSV: {error}", line=reader.line_num) from error


def normalize_header(text: str) -> str:
    """Return a header cell in the form used for matching: no BOM or outer spaces, case folded."""
    return text.replace(BOM, "").strip().casefold()


def find_column(header: Sequence[str], expected: str) -> int | None:
    """Return the index of the header cell that matches ``expected``, or None."""
    target = normalize_header(expected)
    for index, cell in enumerate(header):
        if normalize_header(cell) == target:
            return index
    return None


def parse_local_datetime(text: str, formats: Sequence[str], timezone: ZoneInfo) -> datetime | None:
    """Parse a local wall time with the first format that fits and return it in UTC, or None.

    Wall times that daylight saving time makes ambiguous or non-existent are resolved with
    ``fold=0`` (PEP 495):

    - an ambiguous time (autumn, the hour that repeats) is taken as its first occurrence, still
      in summer time: 2026-10-25 02:30 in Europe/Warsaw is 00:30 UTC;
    - a non-existent time (spring, the skipped hour) uses the offset in force before the change,
      so it lands one hour later on the clock: 2026-03-29 02:30 in Europe/Warsaw is 01:30 UTC,
      which is 03:30 summer time.
    """
    value = text.strip()
    for date_format in formats:
        try:
            naive = datetime.strptime(value, date_format)
        except ValueError:
            continue
        return naive.replace(tzinfo=timezone, fold=0).astimezone(UTC)
    return None


_SPACES = re.compile(r"[\s\u00a0\u202f]")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
# Dots between groups of three digits, before an optional decimal comma: 1.234.567 or 1.234,5.
_DOT_GROUPED = re.compile(r"[+-]?[1-9]\d{0,2}(\.\d{3})+(,\d*)?")
# One dot before exactly three digits, as in 1.234 or 12.500: a thousands separator in Polish
# exports, but a decimal point in exports written by English-language tools.
_AMBIGUOUS = re.compile(r"[+-]?[1-9]\d{0,2}\.\d{3}")


def parse_decimal(text: str) -> float | None:
    """Parse a number written with a decimal comma or point, e.g. ``1,5`` or ``1 234,5``; or None.

    Spaces (including the no-break spaces Polish Excel writes) separate thousands, and so do dots
    between groups of three digits, as in ``1.234,5`` or ``1.234.567``. A single dot before three
    digits and no comma (``1.234``) could mean 1234 or 1.234, so it gives None; callers report it
    with ``is_ambiguous_decimal``.
    """
    value = _SPACES.sub("", text)
    if _AMBIGUOUS.fullmatch(value):
        return None
    if "." in value and ("," in value or value.count(".") > 1):
        if not _DOT_GROUPED.fullmatch(value):
            return None
        value = value.replace(".", "")
    value = value.replace(",", ".")
    if not _NUMBER.fullmatch(value):
        return None
    return float(value)


def is_ambiguous_decimal(text: str) -> bool:
    """Return whether ``text`` has a single dot before three digits, such as ``1.234``."""
    return _AMBIGUOUS.fullmatch(_SPACES.sub("", text)) is not None
