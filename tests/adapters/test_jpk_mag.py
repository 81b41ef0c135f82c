"""Tests of the JPK_MAG(1) reader and the stock computed from it, on hand-written files."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.base import SupplyStock
from adapters.errors import ExportFormatError
from adapters.jpk_mag import JpkMagReader, JpkMagSettings
from adapters.jpk_mag.stock import StockBook, build_observations, read_opening_stock
from adapters.jpk_mag.xml_records import MAX_TEXT_CHARS
from kooperant.protocol import Amount, Price

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jpk_mag"
JPK_TEXT = (FIXTURES / "magazyn_2026_03.xml").read_text(encoding="utf-8")
OPENING_FILES = ("stan_poczatkowy_cp1250.csv", "stan_poczatkowy_utf8.csv")

# End of March with the opening list: opening + PZ - WZ - RW - MM/001 + MM/002 (see README.md).
STOCK_WITH_OPENING = {
    "bl-dc01-1.5": (63.0, "ark"),
    "klej-pu-310": (24.0, "szt"),
    "loz-6204-2rs": (108.0, "szt"),
    "sr-m8x30-zn": (2650.0, "szt"),
    "zyw-ep-5": (55.0, "kg"),
}
STOCK_WITHOUT_OPENING = {
    "bl-dc01-1.5": (48.0, "ark"),
    "loz-6204-2rs": (100.0, "szt"),
    "sr-m8x30-zn": (1400.0, "szt"),
    "zyw-ep-5": (42.5, "kg"),
}


def settings_for(**values: object) -> JpkMagSettings:
    return JpkMagSettings.model_validate({"path": "jpk", **values})


def write_jpk(tmp_path: Path, text: str, name: str = "jpk_mag.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def compute(jpk: Path, settings: JpkMagSettings, opening: Path | None = None) -> list[SupplyStock]:
    book = StockBook()
    if opening is not None:
        assert settings.opening_stock is not None
        read_opening_stock(opening, settings.opening_stock, book)
    reader = JpkMagReader(jpk)
    for movement in reader.movements():
        book.add_movement(movement, jpk)
    assert reader.header is not None
    return build_observations(book, reader.header, settings, jpk)


def stock_of(supplies: list[SupplyStock]) -> dict[str, tuple[float | None, str]]:
    result = {}
    for supply in supplies:
        [amount] = [amount for amount in supply.amounts if amount.quantity == "stock"]
        result[supply.resource] = (amount.value, amount.unit)
    return result


def by_resource(supplies: list[SupplyStock]) -> dict[str, SupplyStock]:
    return {supply.resource: supply for supply in supplies}


def line_of(text: str, needle: str) -> int:
    """Return the 1-based line of the first occurrence of ``needle`` in ``text``."""
    index = text.index(needle)
    return text.count("\n", 0, index) + 1


def replaced(old: str, new: str, text: str = JPK_TEXT) -> str:
    assert text.count(old) >= 1, old
    return text.replace(old, new, 1)


# ---- reading the header and the documents


def test_reader_header_of_fixture() -> None:
    reader = JpkMagReader(FIXTURES / "magazyn_2026_03.xml")
    movements = list(reader.movements())

    assert reader.header is not None
    assert reader.header.warehouse == "MG-01 Magazyn główny"
    assert str(reader.header.date_from) == "2026-03-01"
    assert str(reader.header.date_to) == "2026-03-31"
    assert reader.header.currency == "PLN"
    assert len(movements) == JPK_TEXT.count("Wiersz>") // 2


def test_reader_signs_by_document_kind() -> None:
    movements = list(JpkMagReader(FIXTURES / "magazyn_2026_03.xml").movements())
    signs = {(item.document, item.code): item.quantity for item in movements}

    assert signs["PZ/002/03/2026", "LOZ-6204-2RS"] == Decimal(120)
    assert signs["WZ/001/03/2026", "LOZ-6204-2RS"] == Decimal(-30)
    assert signs["RW/001/03/2026", "ZYW-EP-5"] == Decimal("-7.5")
    assert signs["MM/001/03/2026", "SR-M8X30-ZN"] == Decimal(-150)
    # MM/002 goes from MG-02 into this file's warehouse, spelt with other case and spaces.
    assert signs["MM/002/03/2026", "LOZ-6204-2RS"] == Decimal(10)


def test_reader_reports_line_of_movement() -> None:
    movements = list(JpkMagReader(FIXTURES / "magazyn_2026_03.xml").movements())
    receipt = next(item for item in movements if item.document == "PZ/004/03/2026")

    assert receipt.where == "JPK/PZ/PZWiersz[5] (PZ 'PZ/004/03/2026')"
    assert receipt.line == line_of(JPK_TEXT, "<tns:Numer2PZ>PZ/004/03/2026") - 1
    assert receipt.supplier == "Huta Łabędy Dystrybucja"
    assert receipt.unit_price == Decimal("191.00")


def test_reader_windows_1250_declared(tmp_path: Path) -> None:
    text = JPK_TEXT.replace('encoding="UTF-8"', 'encoding="windows-1250"')
    path = tmp_path / "jpk_mag.xml"
    path.write_bytes(text.encode("cp1250"))

    movements = list(JpkMagReader(path).movements())
    expected = list(JpkMagReader(FIXTURES / "magazyn_2026_03.xml").movements())

    assert [item.name for item in movements] == [item.name for item in expected]
    assert [item.quantity for item in movements] == [item.quantity for item in expected]
    assert "Śruba M8×30 ocynk" in {item.name for item in movements}


def test_reader_without_namespace_prefix(tmp_path: Path) -> None:
    text = JPK_TEXT.replace("tns:", "").replace("xmlns:tns=", "xmlns=")
    path = write_jpk(tmp_path, text)

    supplies = compute(path, settings_for())

    assert stock_of(supplies) == STOCK_WITHOUT_OPENING


# ---- bad files: each error names the file, element path, document, line and expectation


@dataclass(frozen=True)
class BadJpk:
    name: str
    text: str
    element: str
    line_needle: str
    expected: tuple[str, ...]


BAD_FILES = [
    BadJpk(
        "quantity with decimal comma",
        replaced("<tns:IloscPrzyjetaPZ>120<", "<tns:IloscPrzyjetaPZ>12,0<"),
        "JPK/PZ/PZWiersz[3]/IloscPrzyjetaPZ (PZ 'PZ/002/03/2026')",
        "<tns:IloscPrzyjetaPZ>12,0<",
        ("'12,0'", "decimal number with a point"),
    ),
    BadJpk(
        "quantity as words",
        replaced("<tns:IloscWydanaRW>450<", "<tns:IloscWydanaRW>czterysta<"),
        "JPK/RW/RWWiersz[2]/IloscWydanaRW (RW 'RW/001/03/2026')",
        "<tns:IloscWydanaRW>czterysta<",
        ("'czterysta'",),
    ),
    BadJpk(
        "missing item code",
        replaced("      <tns:KodTowaruWZ>LOZ-6204-2RS</tns:KodTowaruWZ>\n", ""),
        "JPK/WZ/WZWiersz[1]/KodTowaruWZ (WZ 'WZ/001/03/2026')",
        "<tns:WZWiersz>",
        ("missing or empty", "item code"),
    ),
    BadJpk(
        "empty unit",
        replaced("<tns:JednostkaMiaryMM>szt<", "<tns:JednostkaMiaryMM> <"),
        "JPK/MM/MMWiersz[1]/JednostkaMiaryMM (MM 'MM/001/03/2026')",
        "<tns:JednostkaMiaryMM> <",
        ("missing or empty", "unit"),
    ),
    BadJpk(
        "impossible document date",
        replaced("<tns:DataRW>2026-03-12<", "<tns:DataRW>2026-02-30<"),
        "JPK/RW/RWWartosc[1]/DataRW",
        "<tns:DataRW>2026-02-30<",
        ("'2026-02-30'", "YYYY-MM-DD"),
    ),
    BadJpk(
        "period start in Polish format",
        replaced("<tns:DataOd>2026-03-01<", "<tns:DataOd>01.03.2026<"),
        "JPK/Naglowek[1]/DataOd",
        "<tns:DataOd>01.03.2026<",
        ("'01.03.2026'", "YYYY-MM-DD"),
    ),
    BadJpk(
        "period ends before start",
        replaced("<tns:DataDo>2026-03-31<", "<tns:DataDo>2026-02-28<"),
        "JPK/Naglowek[1]/DataDo",
        "<tns:DataDo>2026-02-28<",
        ("ends (2026-02-28) before it starts (2026-03-01)",),
    ),
    BadJpk(
        "missing currency",
        replaced("    <tns:DomyslnyKodWaluty>PLN</tns:DomyslnyKodWaluty>\n", ""),
        "JPK/Naglowek[1]/DomyslnyKodWaluty",
        "<tns:Naglowek>",
        ("currency code",),
    ),
    BadJpk(
        "unit differs between documents",
        replaced(
            "<tns:IloscWydanaRW>7.5</tns:IloscWydanaRW>\n      <tns:JednostkaMiaryRW>kg<",
            "<tns:IloscWydanaRW>7.5</tns:IloscWydanaRW>\n      <tns:JednostkaMiaryRW>l<",
        ),
        "JPK/RW/RWWiersz[3]/JednostkaMiaryRW (RW 'RW/001/03/2026')",
        "<tns:JednostkaMiaryRW>l<",
        ("'ZYW-EP-5'", "'l'", "'kg'", "JPK/PZ/PZWiersz[4]", "one item needs one unit"),
    ),
    BadJpk(
        "line of unknown document",
        replaced("<tns:Numer2MM>MM/002/03/2026<", "<tns:Numer2MM>MM/009/03/2026<"),
        "JPK/MM/MMWiersz[2]/Numer2MM",
        "<tns:Numer2MM>MM/009/03/2026<",
        ("'MM/009/03/2026'", "no <MMWartosc> before it"),
    ),
    BadJpk(
        "document number twice",
        replaced("<tns:NumerPZ>PZ/002/03/2026<", "<tns:NumerPZ>PZ/001/03/2026<"),
        "JPK/PZ/PZWartosc[2]/NumerPZ",
        "<tns:NumerPZ>PZ/001/03/2026</tns:NumerPZ>\n      <tns:DataPZ>2026-03-09",
        ("'PZ/001/03/2026' appears twice",),
    ),
    BadJpk(
        "control count differs",
        replaced("<tns:LiczbaPZ>4<", "<tns:LiczbaPZ>5<"),
        "JPK/PZ/PZCtrl[1]/LiczbaPZ",
        "<tns:LiczbaPZ>5<",
        ("declares 5 PZ documents but the file has 4", "incomplete"),
    ),
    BadJpk(
        "missing warehouse",
        replaced("  <tns:Magazyn>MG-01 Magazyn główny</tns:Magazyn>\n", ""),
        "JPK/PZ/PZWartosc[1]",
        "<tns:PZWartosc>",
        ("expected <Magazyn>",),
    ),
    BadJpk(
        "missing control record",
        replaced(
            "    <tns:WZCtrl>\n      <tns:LiczbaWZ>1</tns:LiczbaWZ>\n"
            "      <tns:SumaWZ>444.00</tns:SumaWZ>\n    </tns:WZCtrl>\n",
            "",
        ),
        "JPK/WZ/WZCtrl",
        "<tns:JPK ",
        ("missing", "incomplete"),
    ),
]


@pytest.mark.parametrize("bad", BAD_FILES, ids=[bad.name for bad in BAD_FILES])
def test_bad_jpk_error_names_location(tmp_path: Path, bad: BadJpk) -> None:
    path = write_jpk(tmp_path, bad.text)

    with pytest.raises(ExportFormatError) as caught:
        compute(path, settings_for())

    error = caught.value
    assert error.path == path
    assert error.line == line_of(bad.text, bad.line_needle)
    assert f"{bad.element}:" in str(error)
    for fragment in bad.expected:
        assert fragment in str(error)


def test_jpk_mag_2_not_supported(tmp_path: Path) -> None:
    text = (
        JPK_TEXT.replace('"JPK_MAG (1)"', '"JPK_MAG (2)"')
        .replace("<tns:WariantFormularza>1<", "<tns:WariantFormularza>2<")
        .replace("2016/03/09/03093", "2024/11/21/13411")
    )
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError) as caught:
        list(JpkMagReader(path).movements())

    message = str(caught.value)
    assert "JPK/Naglowek[1]/KodFormularza:" in message
    assert "JPK_MAG (2)" in message
    assert "WariantFormularza 2" in message
    assert "not supported yet" in message
    assert "reads JPK_MAG (1), namespace http://jpk.mf.gov.pl/wzor/2016/03/09/03093/" in message
    assert caught.value.line == line_of(text, "<tns:KodFormularza")


def test_other_jpk_structure_rejected(tmp_path: Path) -> None:
    text = replaced(
        '<tns:KodFormularza kodSystemowy="JPK_MAG (1)" wersjaSchemy="1-0">JPK_MAG<',
        '<tns:KodFormularza kodSystemowy="JPK_FA (3)" wersjaSchemy="1-0">JPK_FA<',
    )
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError, match=r"this is a JPK_FA file \(JPK_FA \(3\)\)"):
        list(JpkMagReader(path).movements())


def test_non_jpk_xml_rejected(tmp_path: Path) -> None:
    path = write_jpk(
        tmp_path,
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Zamowienie><Pozycja>Łożysko 6204-2RS</Pozycja></Zamowienie>\n",
    )

    with pytest.raises(ExportFormatError) as caught:
        list(JpkMagReader(path).movements())

    assert "not a JPK file: the root element is <Zamowienie>" in str(caught.value)
    assert caught.value.line == 2


def test_header_must_come_first(tmp_path: Path) -> None:
    text = JPK_TEXT.replace("<tns:Naglowek>", "<tns:Magazyn>X</tns:Magazyn><tns:Naglowek>", 1)
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError, match=r"JPK/Magazyn\[1\]: expected <Naglowek>"):
        list(JpkMagReader(path).movements())


@pytest.mark.parametrize("content", [b"", b"  \r\n\n"], ids=["zero bytes", "blank lines"])
def test_empty_file_rejected(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "jpk_mag.xml"
    path.write_bytes(content)

    with pytest.raises(ExportFormatError, match="the file is empty"):
        list(JpkMagReader(path).movements())


def test_truncated_file_names_line(tmp_path: Path) -> None:
    cut = JPK_TEXT.index("<tns:IloscWydanaRW>450")
    text = JPK_TEXT[:cut]
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError) as caught:
        list(JpkMagReader(path).movements())

    message = str(caught.value)
    assert "ends early or is not well-formed" in message
    assert caught.value.line == text.count("\n") + 1
    assert f"at line {caught.value.line} column" in message


def test_undeclared_cp1250_bytes_rejected(tmp_path: Path) -> None:
    path = tmp_path / "jpk_mag.xml"
    path.write_bytes(JPK_TEXT.encode("cp1250"))

    with pytest.raises(ExportFormatError) as caught:
        list(JpkMagReader(path).movements())

    message = str(caught.value)
    assert "not well-formed XML" in message
    assert "encoding in the XML declaration" in message
    assert caught.value.line == line_of(JPK_TEXT, "Zakład")


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_entity_declarations_rejected(name: str) -> None:
    path = FIXTURES / name

    with pytest.raises(ExportFormatError) as caught:
        list(JpkMagReader(path).movements())

    message = str(caught.value)
    assert "document type declaration" in message
    assert "entities can expand without bound or read other files" in message
    assert caught.value.line == 2
    assert "root:" not in message  # the content of /etc/passwd never reaches the message


def test_overlong_text_rejected(tmp_path: Path) -> None:
    text = replaced(
        "<tns:Dostawca>Stalprofil Sp. z o.o.<",
        f"<tns:Dostawca>{'Ś' * (MAX_TEXT_CHARS + 1)}<",
    )
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError) as caught:
        list(JpkMagReader(path).movements())

    assert "JPK/PZ/PZWartosc/Dostawca: the text is longer" in str(caught.value)
    assert caught.value.line == line_of(text, "<tns:Dostawca>ŚŚ")


# ---- stock


@pytest.mark.parametrize("opening", OPENING_FILES)
def test_stock_with_opening_list(opening: str) -> None:
    settings = settings_for(opening_stock={"path": opening})

    supplies = compute(FIXTURES / "magazyn_2026_03.xml", settings, FIXTURES / opening)

    assert stock_of(supplies) == STOCK_WITH_OPENING
    names = {supply.resource: supply.name for supply in supplies}
    assert names["sr-m8x30-zn"] == "Śruba M8×30 ocynk"
    assert names["klej-pu-310"] == "Klej poliuretanowy 310 ml – kartusz"


def test_stock_without_opening_list() -> None:
    supplies = compute(FIXTURES / "magazyn_2026_03.xml", settings_for())

    assert stock_of(supplies) == STOCK_WITHOUT_OPENING


def test_price_of_latest_receipt() -> None:
    supplies = by_resource(compute(FIXTURES / "magazyn_2026_03.xml", settings_for()))

    assert supplies["bl-dc01-1.5"].price == Price(191.0, "PLN", "ark")
    assert supplies["sr-m8x30-zn"].price == Price(0.42, "PLN", "szt")
    assert supplies["bl-dc01-1.5"].suppliers == (
        "Stalprofil Sp. z o.o.",
        "Huta Łabędy Dystrybucja",
    )
    assert supplies["zyw-ep-5"].suppliers == ("Chemia Żory Sp.j.",)
    assert supplies["zyw-ep-5"].customers == ()


def test_item_without_receipt_has_no_price() -> None:
    settings = settings_for(opening_stock={"path": "x"})
    opening = FIXTURES / OPENING_FILES[0]

    supplies = by_resource(compute(FIXTURES / "magazyn_2026_03.xml", settings, opening))

    assert supplies["klej-pu-310"].price is None
    assert supplies["klej-pu-310"].suppliers == ()


def test_surplus_from_reserves() -> None:
    settings = settings_for(reserve={"BL-DC01-1.5": 50, "ZYW-EP-5": 60}, default_reserve=100)

    supplies = by_resource(compute(FIXTURES / "magazyn_2026_03.xml", settings))

    assert supplies["bl-dc01-1.5"].amounts == (
        Amount("stock", 48.0, "ark"),
        Amount("surplus", 0.0, "ark"),
    )
    assert supplies["zyw-ep-5"].amounts[1] == Amount("surplus", 0.0, "kg")
    assert supplies["sr-m8x30-zn"].amounts[1] == Amount("surplus", 1300.0, "szt")


def test_no_reserve_means_no_surplus() -> None:
    supplies = compute(FIXTURES / "magazyn_2026_03.xml", settings_for(reserve={"ZYW-EP-5": 2.5}))

    surplus = {
        supply.resource: [amount.value for amount in supply.amounts if amount.quantity == "surplus"]
        for supply in supplies
    }
    assert surplus["zyw-ep-5"] == [40.0]
    assert surplus["bl-dc01-1.5"] == []


def issue_more_than_stock() -> str:
    return replaced("<tns:IloscWydanaWZ>30<", "<tns:IloscWydanaWZ>130.25<")


def test_negative_stock_offered_as_zero(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_jpk(tmp_path, issue_more_than_stock())

    with caplog.at_level(logging.WARNING, logger="adapters.jpk_mag.stock"):
        supplies = by_resource(compute(path, settings_for()))

    assert supplies["loz-6204-2rs"].amounts == (Amount("stock", 0.0, "szt"),)
    [warning] = [record.getMessage() for record in caplog.records]
    assert str(path) in warning
    assert "items with a computed stock below 0: 1 ('LOZ-6204-2RS' -0.25 szt)" in warning
    assert "offered with stock 0" in warning


def test_negative_stock_error_setting(tmp_path: Path) -> None:
    path = write_jpk(tmp_path, issue_more_than_stock())

    with pytest.raises(ExportFormatError) as caught:
        compute(path, settings_for(negative_stock="error"))

    assert "'LOZ-6204-2RS' -0.25 szt" in str(caught.value)
    assert "negative_stock: zero" in str(caught.value)


def test_items_setting_maps_codes() -> None:
    settings = settings_for(items={"ZYW-EP-5": "zywica-epoksydowa-5kg"})

    supplies = by_resource(compute(FIXTURES / "magazyn_2026_03.xml", settings))

    assert "zywica-epoksydowa-5kg" in supplies
    assert "zyw-ep-5" not in supplies


def test_code_without_slug_rejected(tmp_path: Path) -> None:
    text = JPK_TEXT.replace(">ZYW-EP-5<", ">###<")
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError) as caught:
        compute(path, settings_for())

    assert "item code '###' at JPK/PZ/PZWiersz[4] (PZ 'PZ/003/03/2026')" in str(caught.value)
    assert "map it in 'items'" in str(caught.value)
    assert caught.value.line == line_of(text, "<tns:Numer2PZ>PZ/003/03/2026") - 1


def test_codes_with_same_id_rejected(tmp_path: Path) -> None:
    text = JPK_TEXT.replace(">ZYW-EP-5<", ">żyw ep 5<", 1)
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError, match="both become resource id 'zyw-ep-5'"):
        compute(path, settings_for())


# ---- opening stock list


def write_opening(tmp_path: Path, text: str, encoding: str = "cp1250") -> Path:
    path = tmp_path / "stan.csv"
    path.write_bytes(text.encode(encoding))
    return path


def test_opening_unit_mismatch_names_both(tmp_path: Path) -> None:
    opening = write_opening(tmp_path, "Kod towaru;Ilość;J.m.\r\nZYW-EP-5;12,5;l\r\n")
    settings = settings_for(opening_stock={"path": "stan.csv"})

    with pytest.raises(ExportFormatError) as caught:
        compute(FIXTURES / "magazyn_2026_03.xml", settings, opening)

    message = str(caught.value)
    assert "'ZYW-EP-5' is counted in 'kg' here but in 'l'" in message
    assert "row of item 'ZYW-EP-5' in stan.csv line 2" in message


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("Kod;Ilość;J.m.\r\nX;1;szt\r\n", 1, "missing column 'Kod towaru'"),
        ("Kod towaru;Ilość;J.m.\r\nŚR-1;dwanaście;szt\r\n", 2, "invalid quantity 'dwanaście'"),
        ("Kod towaru;Ilość;J.m.\r\nŚR-1;-3;szt\r\n", 2, "must be at least 0"),
        ("Kod towaru;Ilość;J.m.\r\nŚR-1;3;\r\n", 2, "empty unit"),
        ("Kod towaru;Ilość;J.m.\r\nŚR-1;3;szt\r\nŚR-1;4;szt\r\n", 3, "listed twice"),
    ],
    ids=["renamed column", "words", "negative", "no unit", "duplicate"],
)
def test_bad_opening_list_names_line(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    opening = write_opening(tmp_path, text)
    book = StockBook()
    settings = settings_for(opening_stock={"path": "stan.csv"})
    assert settings.opening_stock is not None

    with pytest.raises(ExportFormatError) as caught:
        read_opening_stock(opening, settings.opening_stock, book)

    assert caught.value.path == opening
    assert caught.value.line == line
    assert fragment in str(caught.value)


def test_opening_list_wrong_encoding(tmp_path: Path) -> None:
    opening = tmp_path / "stan.csv"
    opening.write_bytes((FIXTURES / OPENING_FILES[0]).read_bytes())
    settings = settings_for(opening_stock={"path": "stan.csv", "encoding": "utf-8"})
    assert settings.opening_stock is not None

    with pytest.raises(ExportFormatError) as caught:
        read_opening_stock(opening, settings.opening_stock, StockBook())

    assert "is not valid utf-8" in str(caught.value)
    assert caught.value.line == 1


def test_issue_price_not_checked(tmp_path: Path) -> None:
    text = replaced("<tns:CenaJednWZ>14.80<", "<tns:CenaJednWZ>14,80 zł<")
    path = write_jpk(tmp_path, text)

    supplies = by_resource(compute(path, settings_for()))

    assert supplies["loz-6204-2rs"].price == Price(14.8, "PLN", "szt")


def test_receipt_price_checked(tmp_path: Path) -> None:
    text = replaced("<tns:CenaJednPZ>0.42<", "<tns:CenaJednPZ>0,42<")
    path = write_jpk(tmp_path, text)

    with pytest.raises(ExportFormatError) as caught:
        compute(path, settings_for())

    assert "JPK/PZ/PZWiersz[2]/CenaJednPZ (PZ 'PZ/001/03/2026')" in str(caught.value)
    assert caught.value.line == line_of(text, "<tns:CenaJednPZ>0,42<")


def test_empty_opening_list_rejected(tmp_path: Path) -> None:
    opening = write_opening(tmp_path, "")
    settings = settings_for(opening_stock={"path": "stan.csv"})
    assert settings.opening_stock is not None

    with pytest.raises(ExportFormatError, match="opening stock list is empty"):
        read_opening_stock(opening, settings.opening_stock, StockBook())


def test_opening_list_from_xlsx(tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Indeks", "Nazwa", "Stan", "Jedn."])
    sheet.append(["ZYW-EP-5", "Żywica epoksydowa", 12.5, "kg"])
    sheet.append(["BL-DC01-1.5", "Blacha stalowa DC01 1,5 mm", 15, "ark"])
    path = tmp_path / "stan.xlsx"
    workbook.save(path)
    columns = {"code": "Indeks", "name": "Nazwa", "quantity": "Stan", "unit": "Jedn."}
    settings = settings_for(opening_stock={"path": "stan.xlsx", "columns": columns})

    supplies = stock_of(compute(FIXTURES / "magazyn_2026_03.xml", settings, path))

    assert supplies["zyw-ep-5"] == (55.0, "kg")
    assert supplies["bl-dc01-1.5"] == (63.0, "ark")


# ---- settings


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"colour": "red"}, "colour"),
        ({"items": {"ŚR-1": "śruba"}}, "not a valid resource id"),
        ({"reserve": {"ŚR-1": -1}}, "at least 0"),
        ({"default_reserve": -5}, "default_reserve"),
        ({"negative_stock": "ignore"}, "negative_stock"),
        ({"opening_stock": {"path": "x", "delimiter": "|"}}, "delimiter"),
    ],
)
def test_settings_invalid(values: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        settings_for(**values)


def test_unit_spelling_of_first_line_kept(tmp_path: Path) -> None:
    # The internal issue (RW) is the item's last line in the file.
    last_line = "<tns:IloscWydanaRW>12</tns:IloscWydanaRW>\n      <tns:JednostkaMiaryRW>ark<"
    assert JPK_TEXT.count(last_line) == 1
    text = JPK_TEXT.replace(last_line, last_line.replace(">ark<", ">ARK<"))
    jpk = write_jpk(tmp_path, text)

    stock = stock_of(compute(jpk, JpkMagSettings.model_validate({"path": str(jpk)})))

    assert stock["bl-dc01-1.5"][1] == "ark"
