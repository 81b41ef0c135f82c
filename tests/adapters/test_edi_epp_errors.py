"""Tests of invalid EDI++ files: each error names the file, line and field and what was expected."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from adapters.edi_epp import EdiEppSettings, read_epp_stock
from adapters.errors import ExportFormatError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "edi_epp"
TEXT = (FIXTURES / "dokumenty.epp").read_bytes().decode("cp1250")
LINES = TEXT.split("\r\n")


def line_of(snippet: str, text: str = TEXT) -> int:
    """Return the 1-based line of the first occurrence of ``snippet``."""
    return text[: text.index(snippet)].count("\n") + 1


def read_text(tmp_path: Path, text: str, **settings: object) -> ExportFormatError:
    path = tmp_path / "dokumenty.epp"
    path.write_bytes(text.encode("cp1250"))
    return read_error(path, **settings)


def read_error(path: Path, **settings: object) -> ExportFormatError:
    values: dict[str, object] = {"path": str(path)}
    values.update(settings)
    with pytest.raises(ExportFormatError) as raised:
        read_epp_stock(path, EdiEppSettings.model_validate(values))
    return raised.value


def test_header_without_content_rejected(tmp_path: Path) -> None:
    # The file is cut right after the header line of the last document, ZK 1.
    cut = TEXT[: TEXT.index("\r\n", TEXT.index('"ZK",1,0,1')) + 2]

    error = read_text(tmp_path, cut)

    assert error.path.name == "dokumenty.epp"
    assert error.line == line_of('"ZK",1,0,1')
    assert "'ZK 1/11/2026' has no [ZAWARTOSC]" in str(error)


def test_line_cut_mid_quote_rejected(tmp_path: Path) -> None:
    position = TEXT.index('1,1,"LOZ-6204-2RS",1,1,1')
    cut = TEXT[: position + len('1,1,"LOZ-62')]

    error = read_text(tmp_path, cut)

    assert error.line == line_of('1,1,"LOZ-6204-2RS",1,1,1')
    assert error.column == "field 3"
    assert "ends inside the quoted text of field 3" in str(error)


def test_missing_positions_rejected(tmp_path: Path) -> None:
    # PZ 1 announces 2 positions; the second is gone, as if the file were cut at a line end.
    second = '2,1,"SR-M8X30-OC",1,1,1,0,0.0000,0.0000,"szt",5000.0000'
    start = TEXT.index(second)
    end = TEXT.index("\r\n", start) + 2

    error = read_text(tmp_path, TEXT[:start] + TEXT[end:])

    assert error.line == line_of('"PZ",1,0,1')
    assert error.column == "field 25: number of positions"
    assert "announces 2 positions, but its [ZAWARTOSC] has 1 lines" in str(error)


def test_utf8_without_bom_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dokumenty.epp"
    path.write_bytes(TEXT.encode("utf-8"))

    error = read_error(path)

    assert error.line == line_of("Łódź")
    assert "UTF-8 without a byte order mark" in str(error)
    assert "Windows-1250" in str(error)


def test_utf16_rejected(tmp_path: Path) -> None:
    path = tmp_path / "dokumenty.epp"
    path.write_bytes(TEXT.encode("utf-16"))

    error = read_error(path)

    assert "UTF-16" in str(error)


def test_damaged_byte_rejected(tmp_path: Path) -> None:
    # 0x98 is not a character of Windows-1250.
    path = tmp_path / "dokumenty.epp"
    data = TEXT.encode("cp1250")
    offset = data.index(b"Stalprofil S.A.")
    path.write_bytes(data[:offset] + b"\x98" + data[offset:])

    error = read_error(path)

    assert error.line == line_of("Stalprofil S.A.")
    assert "0x98" in str(error)


def test_unknown_section_rejected(tmp_path: Path) -> None:
    text = TEXT.replace('[NAGLOWEK]\r\n"TOWARY"', '[MAGAZYNY]\r\n"TOWARY"')

    error = read_text(tmp_path, text)

    assert error.line == line_of("[MAGAZYNY]", text)
    assert "unknown section [MAGAZYNY]" in str(error)
    assert "[NAGLOWEK]" in str(error)


def test_header_too_few_fields_rejected(tmp_path: Path) -> None:
    header = next(line for line in LINES if line.startswith('"WZ",1,0,1'))
    short = ",".join(header.split(",")[:20])

    error = read_text(tmp_path, TEXT.replace(header, short))

    assert error.line == line_of('"WZ",1,0,1')
    assert error.column == "field 25: number of positions"
    assert "has 20 fields, expected at least 25" in str(error)


def test_position_too_few_fields_rejected(tmp_path: Path) -> None:
    position = '1,1,"LOZ-6204-2RS",1,1,1,0,0.0000,0.0000,"szt",200.0000'
    line = next(text for text in LINES if text.startswith(position))

    error = read_text(tmp_path, TEXT.replace(line, '1,1,"LOZ-6204-2RS",1,1,1,0,0.0000'))

    assert error.line == line_of('1,1,"LOZ-6204-2RS",1,1,1,0,0.0000')
    assert error.column == "field 12: quantity in stock unit"
    assert "has 8 fields, expected at least 12" in str(error)


@pytest.mark.parametrize(
    ("old", "new", "column", "expected"),
    [
        pytest.param(
            '"szt",200.0000,200.0000',
            '"szt",200.0000,1 200.5',
            "field 12: quantity in stock unit",
            "expected a number such as 12.5000",
            id="thousands-space",
        ),
        pytest.param(
            '"szt",200.0000,200.0000',
            '"szt",200.0000,',
            "field 12: quantity in stock unit",
            "invalid quantity in stock unit ''",
            id="empty-quantity",
        ),
        pytest.param(
            '"szt",200.0000,200.0000',
            '"szt",200.0000,' + "9" * 400,
            "field 12: quantity in stock unit",
            "expected at most 1e+12",
            id="huge-quantity",
        ),
        pytest.param(
            '"Magazyn",,"Łódź",20261103000000',
            '"Magazyn",,"Łódź",2026-11-03',
            "field 22: issue date",
            "expected a date as yyyymmddhhnnss",
            id="iso-date",
        ),
        pytest.param(
            '"Magazyn",,"Łódź",20261103000000',
            '"Magazyn",,"Łódź",20261332000000',
            "field 22: issue date",
            "invalid issue date '20261332000000'",
            id="month-13",
        ),
        pytest.param(
            '"PZ",1,0,2,',
            '"PZ",wykonany,0,2,',
            "field 2: status",
            "expected a whole number such as 1",
            id="status-word",
        ),
    ],
)
def test_invalid_value_rejected(
    tmp_path: Path, old: str, new: str, column: str, expected: str
) -> None:
    assert TEXT.count(old) == 1
    text = TEXT.replace(old, new)

    error = read_text(tmp_path, text)

    assert error.path.name == "dokumenty.epp"
    assert error.line == line_of(new, text)
    assert error.column == column
    assert expected in str(error)


def test_empty_file_rejected(tmp_path: Path) -> None:
    error = read_text(tmp_path, "")

    assert "the file is empty" in str(error)


def test_blank_lines_only_rejected(tmp_path: Path) -> None:
    error = read_text(tmp_path, "\r\n  \r\n")

    assert "the file is empty" in str(error)


def test_csv_file_rejected(tmp_path: Path) -> None:
    error = read_text(tmp_path, "Symbol;Nazwa;Stan\r\nBL-DC01;Blacha;40\r\n")

    assert error.line == 1
    assert "not an EDI++ file" in str(error)
    assert "'Symbol;Nazwa;Stan'" in str(error)


def test_file_starting_with_header_rejected(tmp_path: Path) -> None:
    text = TEXT[TEXT.index("[NAGLOWEK]") :]

    error = read_text(tmp_path, text)

    assert error.line == 1
    assert "starts with [NAGLOWEK]" in str(error)


def test_info_without_line_rejected(tmp_path: Path) -> None:
    error = read_text(tmp_path, "[INFO]\r\n\r\n")

    assert "[INFO] has no line" in str(error)


def test_second_info_rejected(tmp_path: Path) -> None:
    info = "\r\n".join(LINES[:2])
    text = TEXT + info + "\r\n"

    error = read_text(tmp_path, text)

    assert error.line == len(LINES)
    assert "a second [INFO] section" in str(error)


def test_content_without_header_rejected(tmp_path: Path) -> None:
    text = TEXT.replace('[NAGLOWEK]\r\n"TOWARY"\r\n\r\n', "")

    error = read_text(tmp_path, text)

    assert error.line == 4
    assert "[ZAWARTOSC] without a [NAGLOWEK] line" in str(error)


def test_unsupported_version_rejected(tmp_path: Path) -> None:
    error = read_text(tmp_path, TEXT.replace('"1.05",3,1250', '"2.00",3,1250'))

    assert error.line == 2
    assert error.column == "field 1: format version"
    assert "unsupported EDI++ format version '2.00'" in str(error)


def test_code_page_852_rejected(tmp_path: Path) -> None:
    error = read_text(tmp_path, TEXT.replace('"1.05",3,1250', '"1.05",3,852'))

    assert error.line == 2
    assert error.column == "field 3: code page"
    assert "code page 852" in str(error)


def test_text_after_quote_rejected(tmp_path: Path) -> None:
    text = TEXT.replace('"Stalprofil S.A."', '"Stalprofil" S.A.', 1)

    error = read_text(tmp_path, text)

    assert error.line == line_of('"Stalprofil" S.A.', text)
    assert error.column == "field 14"
    assert "after the closing quote of field 14; expected a comma" in str(error)


def test_transfer_without_target_rejected(tmp_path: Path) -> None:
    text = TEXT.replace(',,,,"MAG2",,,,', ",,,,,,,,")

    error = read_text(tmp_path, text)

    assert error.line == line_of('"MMW",1,0,1', text)
    assert error.column == "field 11: target warehouse"


def test_invalid_item_id_rejected(tmp_path: Path) -> None:
    text = TEXT.replace('"ZYW-EPOX"', '"---"')

    error = read_text(tmp_path, text)

    # The parked PZ 3 does not count, so the first counted position is the one of PW 1.
    assert error.line == line_of('1,1,"---",1,1,1,0,0.0000,0.0000,"kg",25.0000', text)
    assert "item code '---'" in str(error)
    assert "'items' setting" in str(error)


def test_opening_stock_column_missing(tmp_path: Path) -> None:
    opening = tmp_path / "stan.csv"
    opening.write_text("Symbol;Ilość\r\nBL-DC01-1.5;40\r\n", encoding="cp1250")
    documents = FIXTURES / "dokumenty.epp"
    settings = EdiEppSettings.model_validate(
        {"path": str(documents), "opening_stock": {"path": str(opening)}}
    )

    with pytest.raises(ExportFormatError) as raised:
        read_epp_stock(documents, settings, opening)

    assert raised.value.path == opening
    assert raised.value.line == 1
    assert "missing column 'Stan'" in str(raised.value)


def test_large_file_streamed(tmp_path: Path) -> None:
    path = tmp_path / "duzy.epp"
    header_line = next(line for line in LINES if line.startswith('"PW",1,0,1'))
    position = next(line for line in LINES if '"ZYW-EPOX",1,1,1,0,0.0000,0.0000,"kg",25.0' in line)
    documents = 800
    positions = 50
    header = header_line.replace(',1,1,"Hurtowa"', f',{positions},1,"Hurtowa"')
    with path.open("w", encoding="cp1250", newline="\r\n") as stream:
        stream.write("[INFO]\n" + LINES[1] + "\n\n")
        for document in range(documents):
            stream.write(f"[NAGLOWEK]\n{header}\n\n[ZAWARTOSC]\n")
            for index in range(positions):
                code = f"ZYW-{(document * positions + index) % 300:03d}-Żółć"
                stream.write(position.replace('"ZYW-EPOX"', f'"{code}"') + "\n")
            stream.write("\n")
    size = path.stat().st_size
    assert size > 5_000_000

    tracemalloc.start()
    try:
        supplies = read_epp_stock(path, EdiEppSettings.model_validate({"path": str(path)}))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert len(supplies) == 300
    assert sum(item.amounts[0].value or 0 for item in supplies) == documents * positions * 25
    assert peak < size / 10
