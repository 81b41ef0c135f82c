"""Streaming text exports with bounded memory: encoding detection and CSV records.

An export of 100 MB is never held in memory whole. ``detect_encoding`` reads the file once in
chunks to choose the codec (and to find damage, with its line), then ``stream_rows`` reads it again
record by record. ``adapters.exports.polish_csv`` applies the same rules to text already in memory.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from pathlib import Path

from adapters.errors import ExportFormatError
from adapters.exports.polish_csv import (
    CsvRow,
    Encoding,
    csv_records,
    delimiter_of,
    looks_like_utf16,
    utf16_message,
)
from adapters.exports.progress import open_export_text

# Small enough that a chunk and its decoded text stay far below the size of a large export.
CHUNK_BYTES = 64 * 1024


def detect_encoding(path: Path, encoding: Encoding) -> str:
    """Return the codec to read ``path`` with; raise ``ExportFormatError`` if none fits.

    With ``auto``: UTF-8 with BOM when the file starts with one, else UTF-8 when every byte
    decodes, else Windows-1250. NUL bytes and UTF-16 are rejected with any setting.
    """
    with path.open("rb") as stream:
        head = stream.read(512)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or looks_like_utf16(head):
        raise ExportFormatError(path, utf16_message())

    if encoding == "cp1250":
        _check_decodes(path, "cp1250", hint="export as UTF-8 or set 'encoding: auto'")
        return "cp1250"
    if encoding != "auto":
        _check_decodes(path, encoding, hint="set 'encoding: auto' or 'encoding: cp1250'")
        return encoding
    if head.startswith(codecs.BOM_UTF8):
        _check_decodes(path, "utf-8-sig", hint="fix the file's encoding")
        return "utf-8-sig"
    try:
        _check_decodes(path, "utf-8", hint="")
    except ExportFormatError as error:
        if isinstance(error.__cause__, UnicodeDecodeError):
            _check_decodes(path, "cp1250", hint="export the file as UTF-8 or Windows-1250")
            return "cp1250"
        raise
    return "utf-8"


def _check_decodes(path: Path, codec: str, *, hint: str) -> None:
    """Decode ``path`` chunk by chunk and raise ``ExportFormatError`` at the first bad byte."""
    decoder = codecs.getincrementaldecoder(codec)()
    offset = 0
    lines = 1
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            nul = chunk.find(b"\x00")
            if nul >= 0:
                raise ExportFormatError(
                    path,
                    f"the file contains a NUL byte at offset {offset + nul}, so it is damaged or "
                    "not a text export; check the export settings and export the file again",
                    line=lines + chunk.count(b"\n", 0, nul),
                )
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as error:
                raise _decode_error(path, codec, hint, chunk, error, offset, lines) from error
            offset += len(chunk)
            lines += chunk.count(b"\n")
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError as error:
            raise ExportFormatError(
                path, f"the file ends inside a {codec} character; {hint}", line=lines
            ) from error


def _decode_error(
    path: Path,
    codec: str,
    hint: str,
    chunk: bytes,
    error: UnicodeDecodeError,
    offset: int,
    lines: int,
) -> ExportFormatError:
    # An incremental decoder may report the position inside its own buffer, which starts at most a
    # few bytes before the chunk, so the offset is clamped to the chunk.
    start = max(0, min(error.start, len(chunk) - 1))
    byte = chunk[start : start + 1]
    return ExportFormatError(
        path,
        f"byte 0x{byte.hex()} at offset {offset + start} is not valid {codec}; {hint}",
        line=lines + chunk.count(b"\n", 0, start),
    )


def first_line(path: Path, codec: str) -> str:
    """Return the first non-blank line of ``path``, or an empty string."""
    with path.open(encoding=codec, newline="") as stream:
        for line in stream:
            if line.strip():
                return line
    return ""


def detect_delimiter_in(path: Path, codec: str) -> str:
    """Return the candidate delimiter that occurs most often in the file's first non-blank line."""
    return delimiter_of(first_line(path, codec), path)


def stream_rows(path: Path, codec: str, delimiter: str) -> Iterator[CsvRow]:
    """Yield the records of ``path`` one by one, skipping blank ones such as ``;;;;``."""
    with open_export_text(path, codec) as stream:
        yield from csv_records(stream, path, delimiter)
