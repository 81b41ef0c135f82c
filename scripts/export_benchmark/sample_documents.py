"""Writers of generated document files: JPK_MAG(1) XML and EDI++ (.epp) in Windows-1250.

Like ``sample_tables``, each writer fills a file up to about ``target_bytes`` and returns the
number of document lines (positions) written. Receipts are larger than issues, so no item's
stock falls below 0 and the adapters log no warning.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from export_benchmark.sample_tables import CATEGORIES, CITIES

LINES_PER_DOCUMENT = 10
DOCUMENTS_PER_WRITE = 100

JPK_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<tns:JPK xmlns:tns="http://jpk.mf.gov.pl/wzor/2016/03/09/03093/">
  <tns:Naglowek>
    <tns:KodFormularza kodSystemowy="JPK_MAG (1)" wersjaSchemy="1-0">JPK_MAG</tns:KodFormularza>
    <tns:WariantFormularza>1</tns:WariantFormularza>
    <tns:CelZlozenia>1</tns:CelZlozenia>
    <tns:DataWytworzeniaJPK>2026-04-01T06:00:00</tns:DataWytworzeniaJPK>
    <tns:DataOd>2026-01-01</tns:DataOd>
    <tns:DataDo>2026-03-31</tns:DataDo>
    <tns:DomyslnyKodWaluty>PLN</tns:DomyslnyKodWaluty>
    <tns:KodUrzedu>2416</tns:KodUrzedu>
  </tns:Naglowek>
  <tns:Magazyn>MG-01 Magazyn główny</tns:Magazyn>
"""


def write_jpk_mag(path: Path, target_bytes: int, items: int) -> int:
    """Write receipts (PZ) and then as many issues (WZ), about ``target_bytes`` in all."""
    sections = (("PZ", "IloscPrzyjetaPZ"), ("WZ", "IloscWydanaWZ"))
    # JPK_MAG lists every document's value record before the lines, so the document count is
    # fixed first, from the size of one document with its lines in each section.
    document_bytes = sum(
        len(_jpk_value(kind, 0)) + LINES_PER_DOCUMENT * len(_jpk_line(kind, element, 0, 0, items))
        for kind, element in sections
    )
    documents = max(1, target_bytes // document_bytes)
    with path.open("wb") as stream:
        stream.write(JPK_HEADER.encode("utf-8"))
        for kind, quantity_element in sections:
            _write_jpk_section(stream, kind, quantity_element, documents, items)
        stream.write(b"</tns:JPK>\n")
    return 2 * documents * LINES_PER_DOCUMENT


def _write_jpk_section(
    stream: BinaryIO, kind: str, quantity_element: str, documents: int, items: int
) -> None:
    stream.write(f"  <tns:{kind}>\n".encode())
    for number in range(documents):
        stream.write(_jpk_value(kind, number).encode("utf-8"))
    for number in range(documents):
        text = "".join(
            _jpk_line(kind, quantity_element, number, position, items)
            for position in range(LINES_PER_DOCUMENT)
        )
        stream.write(text.encode("utf-8"))
    control = (
        f"    <tns:{kind}Ctrl><tns:Liczba{kind}>{documents}</tns:Liczba{kind}>"
        f"<tns:Suma{kind}>0.00</tns:Suma{kind}></tns:{kind}Ctrl>\n  </tns:{kind}>\n"
    )
    stream.write(control.encode("utf-8"))


def _jpk_value(kind: str, number: int) -> str:
    supplier = "<tns:Dostawca>Stalprofil Sp. z o.o.</tns:Dostawca>" if kind == "PZ" else ""
    return (
        f"    <tns:{kind}Wartosc>"
        f"<tns:Numer{kind}>{kind}/{number:06d}/2026</tns:Numer{kind}>"
        f"<tns:Data{kind}>2026-0{number % 3 + 1}-{number % 28 + 1:02d}</tns:Data{kind}>"
        f"<tns:Wartosc{kind}>1000.00</tns:Wartosc{kind}>{supplier}</tns:{kind}Wartosc>\n"
    )


def _jpk_line(kind: str, quantity_element: str, number: int, position: int, items: int) -> str:
    item = (number * LINES_PER_DOCUMENT + position) % items
    quantity = 5 if kind == "PZ" else 2
    return (
        f"    <tns:{kind}Wiersz>"
        f"<tns:Numer2{kind}>{kind}/{number:06d}/2026</tns:Numer2{kind}>"
        f"<tns:KodTowaru{kind}>MAT-{item:05d}</tns:KodTowaru{kind}>"
        f"<tns:NazwaTowaru{kind}>Łożysko kulkowe 6204-2RS partia {item}</tns:NazwaTowaru{kind}>"
        f"<tns:{quantity_element}>{quantity}</tns:{quantity_element}>"
        f"<tns:JednostkaMiary{kind}>szt</tns:JednostkaMiary{kind}>"
        f"<tns:CenaJedn{kind}>14.80</tns:CenaJedn{kind}></tns:{kind}Wiersz>\n"
    )


EPP_INFO = (
    '[INFO]\r\n"1.05",3,1250,"Subiekt GT","KOOP","Metalbud","Metalbud Sp. z o.o.","Łódź",'
    '"90-001","ul. Piotrkowska 10","725-000-00-00","MAG","Główny","Magazyn główny",,1,'
    '20260101000000,20261130235959,"Szef",20261204063000,"Polska","PL",,0\r\n\r\n'
)
# Document types with the factor of their quantities. The documents pass over all items in turn:
# even passes are receipts, odd passes are issues or orders. A receipt carries more than an issue,
# so every item's stock stays at 0 or above from its first receipt on.
EPP_RECEIPTS = (("PZ", 5), ("PW", 3))
EPP_ISSUES_AND_ORDERS = (("WZ", 1), ("RW", 1), ("MMW", 1), ("ZD", 4), ("ZK", 2))
CONTRACTORS = (
    ("STALPROFIL", "Stalprofil", "Stalprofil S.A."),
    ("LOZ-KR", "Łożyska Kraśnik", "Fabryka Łożysk Kraśnik Sp. z o.o."),
    ("CHEM-SL", "Chemia Śląska", "Chemia Śląska Sp. j."),
    ("FMZ", "Fabryka Maszyn Żyrardów", "Fabryka Maszyn Żyrardów S.A."),
)


def write_edi_epp(path: Path, target_bytes: int, items: int) -> int:
    """Write an item catalogue of ``items`` items, then documents until ``target_bytes``."""
    with path.open("wb") as stream:
        written = stream.write(EPP_INFO.encode("cp1250"))
        catalogue = "".join(_epp_catalogue_item(item) for item in range(items))
        text = f'[NAGLOWEK]\r\n"TOWARY"\r\n\r\n[ZAWARTOSC]\r\n{catalogue}\r\n'
        written += stream.write(text.encode("cp1250"))
        positions = 0
        number = 0
        while written < target_bytes:
            batch = "".join(
                _epp_document(number + index, items) for index in range(DOCUMENTS_PER_WRITE)
            )
            written += stream.write(batch.encode("cp1250"))
            number += DOCUMENTS_PER_WRITE
            positions += DOCUMENTS_PER_WRITE * LINES_PER_DOCUMENT
    return positions


def _epp_catalogue_item(item: int) -> str:
    prefix, name, unit = CATEGORIES[item % len(CATEGORIES)]
    name = name.strip('"').replace('"', "")
    return (
        f'1,"{prefix}-{item:05d}",,,"{name}",,"{name}",,,"{unit}","23",23.0000,"23",23.0000,'
        '0.0000,0.0000,,0,"PLN",,,,,,,,,,,,,,,,,,,,,,,\r\n'
    )


def _epp_document(number: int, items: int) -> str:
    in_receipt_pass = number * LINES_PER_DOCUMENT // items % 2 == 0
    kinds = EPP_RECEIPTS if in_receipt_pass else EPP_ISSUES_AND_ORDERS
    document_type, factor = kinds[number % len(kinds)]
    short, contractor, full_name = CONTRACTORS[number % len(CONTRACTORS)]
    if document_type in ("PW", "RW", "MMW"):
        short = contractor = full_name = ""
    target = "MAG2" if document_type == "MMW" else ""
    day = f"2026{number % 11 + 1:02d}{number % 28 + 1:02d}000000"
    header = (
        f'"{document_type}",1,0,{number},,,"{document_type} {number}/2026",,,,"{target}",'
        f'"{short}","{contractor}","{full_name}","{CITIES[number % len(CITIES)]}","90-001",,,'
        f'"Magazyn",,"Łódź",{day},{day},{day},{LINES_PER_DOCUMENT},1,"Hurtowa",0.0000,0.0000,'
        f'0.0000,0.0000,,0.0000,,{day},0.0000,0.0000,0,0,1,0,"Jan Kowalski",,,0.0000,0.0000,'
        '"PLN",1.0000,"dostawę sprawdzić – ""pilne""",,,,0,0,0,,0.0000,,0.0000,"Polska","PL",0'
    )
    positions = "".join(
        _epp_position(position, (number * LINES_PER_DOCUMENT + position) % items, factor)
        for position in range(LINES_PER_DOCUMENT)
    )
    return f"[NAGLOWEK]\r\n{header}\r\n\r\n[ZAWARTOSC]\r\n{positions}\r\n"


def _epp_position(position: int, item: int, factor: int) -> str:
    prefix, _, unit = CATEGORIES[item % len(CATEGORIES)]
    quantity = f"{10 * factor}.0000"
    return (
        f'{position + 1},1,"{prefix}-{item:05d}",1,1,1,0,0.0000,0.0000,"{unit}",{quantity},'
        f"{quantity},185.5000,185.5000,228.1650,23.0000,1855.0000,0.0000,1855.0000,1855.0000,,\r\n"
    )
