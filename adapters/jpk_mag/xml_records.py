"""Streaming a JPK XML file as flat records, with bounded memory and the line of each element.

A JPK file is a root ``JPK`` whose children are either records (``Naglowek``, ``Magazyn``) or
sections (``PZ``, ``WZ``, ``RW``, ``MM``) whose children are records (``PZWartosc``,
``PZWiersz``, ``PZCtrl``). ``read_records`` yields each record once its end tag has been parsed,
with the text of every element inside it keyed by local name (namespaces are dropped), and keeps
nothing else. No element tree is built.

The parser is defusedxml's ``DefusedXMLParser`` with DTDs, entity declarations and external
references forbidden, so billion-laughs expansion and external entities are rejected. It is fed
in chunks and calls a target object per tag, which can ask expat for the current line. The
``iterparse`` of Python 3.11 reports events only after each 16 KiB chunk, when expat's line is
already further on, so it cannot give lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree.ElementTree import ParseError
from xml.parsers import expat

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from adapters.errors import ExportFormatError
from adapters.exports.progress import open_export

CHUNK_BYTES = 1 << 16
SECTIONS = frozenset({"PZ", "WZ", "RW", "MM"})
# JPK text types allow at most 256 characters, so longer text is damage, and the caps keep a
# hostile file from growing one record without bound.
MAX_TEXT_CHARS = 4096
MAX_FIELDS = 256
_FORBIDDEN = {
    "DTDForbidden": "a document type declaration (<!DOCTYPE ...>)",
    "EntitiesForbidden": "an entity declaration (<!ENTITY ...>)",
    "ExternalReferenceForbidden": "a reference to an external entity",
}


@dataclass(frozen=True, slots=True)
class ElementText:
    """The text of one element inside a record and the line where the element starts."""

    text: str
    line: int


@dataclass(slots=True)
class XmlRecord:
    """One record element: its path such as ``JPK/PZ/PZWiersz[12]``, line and field texts.

    ``fields`` maps the local name of each element inside the record to its text. A record
    without child elements (``Magazyn``) has its own text under its own name. Attributes are
    stored as ``Element@attribute``. The root element arrives first, as a record without fields.
    """

    name: str
    path: str
    line: int
    namespace: str
    fields: dict[str, ElementText] = field(default_factory=dict)

    def text(self, name: str) -> str | None:
        """Return the stripped text of field ``name``, or None when it is absent or empty."""
        found = self.fields.get(name)
        if found is None or not found.text.strip():
            return None
        return found.text.strip()

    def line_of(self, name: str) -> int:
        """Return the line of field ``name``, or the record's line when it is absent."""
        found = self.fields.get(name)
        return self.line if found is None else found.line


def split_tag(tag: str) -> tuple[str, str]:
    """Split ``{namespace}local`` into namespace and local name."""
    if tag.startswith("{"):
        namespace, _, local = tag[1:].partition("}")
        return namespace, local
    return "", tag


class _RecordCollector:
    """Target of the XML parser: turns start, data and end calls into ``XmlRecord`` objects."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.expat_parser: expat.XMLParserType | None = None
        self.ready: list[XmlRecord] = []
        self._stack: list[str] = []
        self._counts: dict[str, int] = {}
        self._record: XmlRecord | None = None
        self._record_depth = 0
        self._text: list[str] | None = None
        self._text_length = 0
        self._text_line = 0
        self._has_children = False

    def line(self) -> int:
        return 0 if self.expat_parser is None else self.expat_parser.CurrentLineNumber

    def start(self, tag: str, attributes: dict[str, str]) -> None:
        namespace, local = split_tag(tag)
        self._stack.append(local)
        depth = len(self._stack)
        line = self.line()

        if depth == 1:
            self.ready.append(XmlRecord(local, local, line, namespace))
        elif self._record is None and ((depth == 2 and local not in SECTIONS) or depth == 3):
            self._start_record(local, namespace, depth, line)
        elif self._record is not None:
            self._has_children = True
            self._text, self._text_length, self._text_line = [], 0, line
        for name, value in attributes.items():
            self._add_field(f"{local}@{split_tag(name)[1]}", value, line)

    def _start_record(self, local: str, namespace: str, depth: int, line: int) -> None:
        parent = "/".join(self._stack[:-1])
        count = self._counts[f"{parent}/{local}"] = self._counts.get(f"{parent}/{local}", 0) + 1
        self._record = XmlRecord(local, f"{parent}/{local}[{count}]", line, namespace)
        self._record_depth = depth
        self._has_children = False
        self._text, self._text_length, self._text_line = [], 0, line

    def data(self, text: str) -> None:
        if self._text is None:
            return
        self._text_length += len(text)
        if self._text_length > MAX_TEXT_CHARS:
            where = "/".join(self._stack)
            raise ExportFormatError(
                self.path,
                f"{where}: the text is longer than {MAX_TEXT_CHARS} characters; JPK text fields "
                "hold at most 256, so the file is damaged or not a JPK_MAG export",
                line=self.line(),
            )
        self._text.append(text)

    def end(self, tag: str) -> None:
        local = self._stack[-1]
        depth = len(self._stack)
        record = self._record
        if record is not None and depth == self._record_depth:
            if not self._has_children and self._text is not None:
                self._add_field(local, "".join(self._text), record.line)
            self.ready.append(record)
            self._record = None
        elif record is not None and self._text is not None:
            self._add_field(local, "".join(self._text), self._text_line)
        self._text = None
        self._stack.pop()

    def _add_field(self, name: str, text: str, line: int) -> None:
        record = self._record
        if record is None:
            return
        if len(record.fields) >= MAX_FIELDS and name not in record.fields:
            raise ExportFormatError(
                self.path,
                f"{record.path}: more than {MAX_FIELDS} different elements in one record; "
                "the file is not a JPK_MAG export",
                line=line,
            )
        record.fields[name] = ElementText(text, line)

    def close(self) -> None:
        return None

    def drain(self) -> list[XmlRecord]:
        ready, self.ready = self.ready, []
        return ready


def read_records(path: Path) -> Iterator[XmlRecord]:
    """Yield the root and then every record of the XML file at ``path`` in document order.

    Raise ``ExportFormatError`` for an empty, truncated or not well-formed file. Raise it also for
    a DTD, entity declaration or external reference. ``OSError`` means the file cannot be read.
    """
    collector = _RecordCollector(path)
    parser = DefusedXMLParser(
        target=collector, forbid_dtd=True, forbid_entities=True, forbid_external=True
    )
    collector.expat_parser = parser.parser
    read_any = False
    with open_export(path) as stream:
        while chunk := stream.read(CHUNK_BYTES):
            read_any = read_any or bool(chunk.strip())
            _feed(parser, path, collector, chunk)
            yield from collector.drain()
    if not read_any:
        raise ExportFormatError(path, "the file is empty; expected a JPK_MAG XML export")
    _feed(parser, path, collector, None)
    yield from collector.drain()


def _feed(
    parser: DefusedXMLParser, path: Path, collector: _RecordCollector, chunk: bytes | None
) -> None:
    """Feed ``chunk`` to the parser, or close it when None, converting its errors."""
    try:
        if chunk is None:
            parser.close()
        else:
            parser.feed(chunk)
    except ParseError as error:
        raise _parse_error(path, error, at_end=chunk is None) from error
    except DefusedXmlException as error:
        raise ExportFormatError(
            path,
            f"the file contains {_FORBIDDEN.get(type(error).__name__, 'a forbidden construct')}; "
            "it is rejected because entities can expand without bound or read other files, "
            "and JPK files never need them",
            line=collector.line(),
        ) from error


def _parse_error(path: Path, error: ParseError, *, at_end: bool) -> ExportFormatError:
    line, column = error.position
    reason = expat.ErrorString(error.code)
    if at_end:
        return ExportFormatError(
            path,
            f"the file ends early or is not well-formed at line {line} column {column + 1} "
            f"({reason}); it may still be being written or was cut off, so export it again",
            line=line,
        )
    hint = ""
    if error.code == expat.errors.codes[expat.errors.XML_ERROR_INVALID_TOKEN]:
        hint = "; bytes that do not match the encoding in the XML declaration cause this too"
    return ExportFormatError(
        path,
        f"not well-formed XML at line {line} column {column + 1} ({reason}){hint}",
        line=line,
    )
