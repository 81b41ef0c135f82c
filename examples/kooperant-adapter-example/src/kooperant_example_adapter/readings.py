"""Parse the JSON file a PLC gateway writes with the current silo levels.

The file looks like this; ``written_at`` carries the gateway's UTC offset::

    {
      "written_at": "2026-03-02T06:00:00+01:00",
      "readings": [
        {"tag": "SILO_1.LEVEL", "value": 12.5, "unit": "m3"},
        {"tag": "SILO_2.LEVEL", "value": 3.0, "unit": "m3"}
      ]
    }

Every problem raises ``ExportFormatError`` with the file, the line for a syntax error, and the
JSON path of the element for a wrong value, such as ``readings[1].value``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeGuard

from adapters.errors import ExportFormatError

UNIT = "m3"


@dataclass(frozen=True, slots=True)
class GatewayReadings:
    """The levels of one gateway file, in m³ by tag, and when the gateway wrote them."""

    written_at: datetime
    levels: dict[str, float]


def parse_readings(data: bytes, path: Path) -> GatewayReadings:
    """Parse the gateway file's bytes ``data``; ``path`` is only used in error messages."""
    try:
        document = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ExportFormatError(path, f"not UTF-8 text: {error}") from error
    except json.JSONDecodeError as error:
        message = f"invalid JSON at column {error.colno}: {error.msg}"
        raise ExportFormatError(path, message, line=error.lineno) from error

    if not isinstance(document, dict):
        raise ExportFormatError(path, f"expected a JSON object, got {_kind(document)}")
    written_at = _written_at(document.get("written_at"), path)
    readings = document.get("readings")
    if not isinstance(readings, list):
        raise ExportFormatError(path, f"readings: expected a list, got {_kind(readings)}")

    levels: dict[str, float] = {}
    for index, reading in enumerate(readings):
        tag, value = _reading(reading, f"readings[{index}]", path)
        if tag in levels:
            raise ExportFormatError(path, f"readings[{index}].tag: {tag!r} appears twice")
        levels[tag] = value
    return GatewayReadings(written_at, levels)


def _written_at(value: Any, path: Path) -> datetime:
    if not isinstance(value, str):
        raise ExportFormatError(path, f"written_at: expected an ISO 8601 time, got {_kind(value)}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as error:
        raise ExportFormatError(path, f"written_at: invalid ISO 8601 time {value!r}") from error
    if moment.utcoffset() is None:
        raise ExportFormatError(path, f"written_at: {value!r} needs a UTC offset, e.g. +01:00")
    return moment


def _reading(reading: Any, where: str, path: Path) -> tuple[str, float]:
    if not isinstance(reading, dict):
        raise ExportFormatError(path, f"{where}: expected an object, got {_kind(reading)}")

    tag = reading.get("tag")
    if not isinstance(tag, str) or not tag:
        raise ExportFormatError(path, f"{where}.tag: expected a non-empty string, got {tag!r}")

    value = reading.get("value")
    if not _is_level(value):
        message = f"{where}.value: expected a level of 0 or more, got {value!r}"
        raise ExportFormatError(path, message)

    unit = reading.get("unit")
    if unit != UNIT:
        raise ExportFormatError(path, f"{where}.unit: expected {UNIT!r}, got {unit!r}")
    return tag, float(value)


def _is_level(value: Any) -> TypeGuard[int | float]:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and value >= 0


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return f"{type(value).__name__} {value!r}"[:80]
