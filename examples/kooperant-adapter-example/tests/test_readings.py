"""Parsing the gateway file: good input and every kind of bad input, with file and element."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from kooperant_example_adapter import parse_readings

from adapters.errors import ExportFormatError

PATH = Path("gateway/levels.json")
GOOD = b"""{
  "written_at": "2026-03-02T06:00:00+01:00",
  "readings": [
    {"tag": "SILO_1.LEVEL", "value": 12.5, "unit": "m3"},
    {"tag": "SILO_2.LEVEL", "value": 0, "unit": "m3"}
  ]
}
"""


def test_parse_readings_good_file() -> None:
    readings = parse_readings(GOOD, PATH)

    assert readings.written_at == datetime(2026, 3, 2, 6, tzinfo=timezone(timedelta(hours=1)))
    assert readings.levels == {"SILO_1.LEVEL": 12.5, "SILO_2.LEVEL": 0.0}


def reading(value: str, unit: str = '"m3"', tag: str = '"SILO_1.LEVEL"') -> bytes:
    text = f'{{"written_at": "2026-03-02T06:00:00Z", "readings": [{{"tag": {tag}, '
    text += f'"value": {value}, "unit": {unit}}}]}}'
    return text.encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"written_at": "2026-03-02T06:00:00Z",\n "readings": [}', ":2: invalid JSON at column"),
        (b"\xff\xfe{}", ": not UTF-8 text"),
        (b"[1, 2]", ": expected a JSON object, got list [1, 2]"),
        (b'{"readings": []}', ": written_at: expected an ISO 8601 time, got nothing"),
        (
            b'{"written_at": "2.3.2026 06:00", "readings": []}',
            ": written_at: invalid ISO 8601 time '2.3.2026 06:00'",
        ),
        (
            b'{"written_at": "2026-03-02T06:00:00", "readings": []}',
            ": written_at: '2026-03-02T06:00:00' needs a UTC offset",
        ),
        (
            b'{"written_at": "2026-03-02T06:00:00Z", "readings": {}}',
            ": readings: expected a list, got dict {}",
        ),
        (
            b'{"written_at": "2026-03-02T06:00:00Z", "readings": [7]}',
            ": readings[0]: expected an object, got int 7",
        ),
        (reading("12", tag='""'), ": readings[0].tag: expected a non-empty string, got ''"),
        (reading('"12,5"'), ": readings[0].value: expected a level of 0 or more, got '12,5'"),
        (reading("-0.5"), ": readings[0].value: expected a level of 0 or more, got -0.5"),
        (reading("true"), ": readings[0].value: expected a level of 0 or more, got True"),
        (reading("NaN"), ": readings[0].value: expected a level of 0 or more, got nan"),
        (reading("12", unit='"t"'), ": readings[0].unit: expected 'm3', got 't'"),
    ],
)
def test_parse_readings_rejects_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(ExportFormatError) as error:
        parse_readings(data, PATH)

    assert str(error.value).startswith(str(PATH))
    assert message in str(error.value)


def test_parse_readings_rejects_repeated_tag() -> None:
    data = (
        b'{"written_at": "2026-03-02T06:00:00Z", "readings": ['
        b'{"tag": "A", "value": 1, "unit": "m3"}, {"tag": "A", "value": 2, "unit": "m3"}]}'
    )

    with pytest.raises(ExportFormatError, match=r"readings\[1\]\.tag: 'A' appears twice"):
        parse_readings(data, PATH)
