"""Reading EDI++ files line by line: the encoding, the section labels and the fields of a record.

An EDI++ file is a sequence of sections. Each section starts with a label on a line of its own
([INFO], [NAGLOWEK] or [ZAWARTOSC]) and contains one record per line. Fields are separated by
commas, text is written in double quotes and ``""`` inside text is one quote. [INFO] comes first
and once. The file is read one line at a time, so memory does not grow with its size.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from adapters.errors import ExportFormatError
from adapters.exports.polish_csv import Encoding
from adapters.exports.progress import open_export_text
from adapters.exports.text_files import CHUNK_BYTES, detect_encoding

SECTIONS = ("INFO", "NAGLOWEK", "ZAWARTOSC")


@dataclass(frozen=True, slots=True)
class EppLine:
    """One non-blank line: a section label (``fields`` is None) or a record of ``section``."""

    section: str
    line: int
    fields: tuple[str, ...] | None


def choose_codec(path: Path, encoding: Encoding) -> str:
    """Return the codec to read ``path`` with, after checking that the whole file decodes.

    A UTF-8 byte order mark selects UTF-8 with any setting. With ``cp1250``, a file that is
    valid UTF-8 and has non-ASCII letters is rejected, because Windows-1250 would silently read
    "ą" as two wrong letters.
    """
    with path.open("rb") as stream:
        head = stream.read(len(codecs.BOM_UTF8))
    if head == codecs.BOM_UTF8:
        return detect_encoding(path, "utf-8-sig")
    if encoding != "cp1250":
        return detect_encoding(path, encoding)

    utf8_line = _first_utf8_letter_line(path)
    if utf8_line is not None:
        raise ExportFormatError(
            path,
            "the file is UTF-8 without a byte order mark, but EDI++ files are Windows-1250; "
            "export it again from the program, or set 'encoding: auto' when the program "
            "writes UTF-8",
            line=utf8_line,
        )
    return detect_encoding(path, "cp1250")


def _first_utf8_letter_line(path: Path) -> int | None:
    """Return the line of the first non-ASCII byte if the whole file is valid UTF-8, else None."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 1
    found: int | None = None
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError:
                return None
            if found is None:
                offset = next((index for index, byte in enumerate(chunk) if byte >= 0x80), -1)
                if offset >= 0:
                    found = lines + chunk.count(b"\n", 0, offset)
            lines += chunk.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return None
    return found


def read_lines(path: Path, codec: str) -> Iterator[EppLine]:
    """Yield the labels and records of ``path``; raise ``ExportFormatError`` for a bad line."""
    section: str | None = None
    with open_export_text(path, codec) as stream:
        for number, raw in enumerate(stream, start=1):
            text = raw.rstrip("\r\n")
            stripped = text.strip()
            if not stripped:
                continue
            if stripped.startswith("[") and stripped.endswith("]"):
                section = _check_label(path, number, stripped[1:-1], section)
                yield EppLine(section, number, None)
                continue
            if section is None:
                raise ExportFormatError(
                    path,
                    f"not an EDI++ file: expected the label [INFO] on the first line, found "
                    f"{stripped[:40]!r}",
                    line=number,
                )
            yield EppLine(section, number, split_fields(text, path, number))
    if section is None:
        raise ExportFormatError(path, "the file is empty; expected an EDI++ file starting [INFO]")


def _check_label(path: Path, line: int, label: str, section: str | None) -> str:
    if label not in SECTIONS:
        known = ", ".join(f"[{name}]" for name in SECTIONS)
        raise ExportFormatError(
            path, f"unknown section [{label}]; expected one of {known}", line=line
        )
    if section is None and label != "INFO":
        raise ExportFormatError(
            path, f"the file starts with [{label}]; an EDI++ file starts with [INFO]", line=line
        )
    if section is not None and label == "INFO":
        raise ExportFormatError(
            path, "a second [INFO] section; it may appear only once, at the start", line=line
        )
    return label


def split_fields(text: str, path: Path, line: int) -> tuple[str, ...]:
    """Split one record into its fields, with the quotes of text fields removed."""
    fields: list[str] = []
    index = 0
    while True:
        position = len(fields) + 1
        if text.startswith('"', index):
            value, index = _quoted(text, index, path, line, position)
            if index < len(text) and text[index] != ",":
                raise ExportFormatError(
                    path,
                    f"unexpected {text[index]!r} after the closing quote of field {position}; "
                    "expected a comma",
                    line=line,
                    column=f"field {position}",
                )
        else:
            end = text.find(",", index)
            end = len(text) if end < 0 else end
            value = text[index:end]
            if '"' in value:
                raise ExportFormatError(
                    path,
                    f"a quote inside the unquoted field {position} ({value!r}); "
                    "expected a text field in quotes",
                    line=line,
                    column=f"field {position}",
                )
            index = end
        fields.append(value)
        if index >= len(text):
            return tuple(fields)
        index += 1


def _quoted(text: str, index: int, path: Path, line: int, position: int) -> tuple[str, int]:
    """Read the quoted field opening at ``index``; return its text and the index after it."""
    parts: list[str] = []
    index += 1
    while True:
        end = text.find('"', index)
        if end < 0:
            raise ExportFormatError(
                path,
                f"the line ends inside the quoted text of field {position}; the file may be "
                'cut off, or a text contains a line break or an unpaired quote (write "")',
                line=line,
                column=f"field {position}",
            )
        parts.append(text[index:end])
        if text.startswith('"', end + 1):
            parts.append('"')
            index = end + 2
            continue
        return "".join(parts), end + 1
