#!/usr/bin/env python3
"""Measure the time and memory the jpk_mag adapter needs for a large JPK_MAG(1) file.

The script writes a generated file of about ``--megabytes`` MB to a temporary folder: receipts
and issues of ``--items`` items. It computes the stock from it as the adapter does. It prints the
file size, the time of one read, the tracemalloc peak of a second read and the process's maximum
resident set size. Run from the repository root: ``python scripts/benchmark_jpk_mag.py``.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import TextIO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adapters.jpk_mag import JpkMagReader, JpkMagSettings
from adapters.jpk_mag.stock import StockBook, build_observations

HEADER = """<?xml version="1.0" encoding="UTF-8"?>
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
LINES_PER_DOCUMENT = 10
# Bytes of one document with its lines in the output of write_section, measured with 5000 items.
DOCUMENT_BYTES_ESTIMATE = 3430


def write_section(
    stream: TextIO, kind: str, quantity_element: str, documents: int, items: int
) -> None:
    write = stream.write
    write(f"  <tns:{kind}>\n")
    supplier = "<tns:Dostawca>Stalprofil Sp. z o.o.</tns:Dostawca>" if kind == "PZ" else ""
    for number in range(documents):
        write(
            f"    <tns:{kind}Wartosc>"
            f"<tns:Numer{kind}>{kind}/{number:06d}/2026</tns:Numer{kind}>"
            f"<tns:Data{kind}>2026-0{number % 3 + 1}-{number % 28 + 1:02d}</tns:Data{kind}>"
            f"<tns:Wartosc{kind}>1000.00</tns:Wartosc{kind}>{supplier}</tns:{kind}Wartosc>\n"
        )
    quantity = 5 if kind == "PZ" else 2
    for number in range(documents):
        for position in range(LINES_PER_DOCUMENT):
            item = (number * LINES_PER_DOCUMENT + position) % items
            write(
                f"    <tns:{kind}Wiersz>"
                f"<tns:Numer2{kind}>{kind}/{number:06d}/2026</tns:Numer2{kind}>"
                f"<tns:KodTowaru{kind}>MAT-{item:05d}</tns:KodTowaru{kind}>"
                f"<tns:NazwaTowaru{kind}>Łożysko kulkowe 6204-2RS partia {item}"
                f"</tns:NazwaTowaru{kind}>"
                f"<tns:{quantity_element}>{quantity}</tns:{quantity_element}>"
                f"<tns:JednostkaMiary{kind}>szt</tns:JednostkaMiary{kind}>"
                f"<tns:CenaJedn{kind}>14.80</tns:CenaJedn{kind}></tns:{kind}Wiersz>\n"
            )
    write(
        f"    <tns:{kind}Ctrl><tns:Liczba{kind}>{documents}</tns:Liczba{kind}>"
        f"<tns:Suma{kind}>0.00</tns:Suma{kind}></tns:{kind}Ctrl>\n  </tns:{kind}>\n"
    )


def write_file(path: Path, megabytes: float, items: int) -> None:
    documents = max(1, int(megabytes * 1e6 / DOCUMENT_BYTES_ESTIMATE / 2))
    with path.open("w", encoding="utf-8") as stream:
        stream.write(HEADER)
        write_section(stream, "PZ", "IloscPrzyjetaPZ", documents, items)
        write_section(stream, "WZ", "IloscWydanaWZ", documents, items)
        stream.write("</tns:JPK>\n")


def compute_stock(path: Path) -> int:
    """Compute the stock of every item in ``path`` as the adapter does; return the item count."""
    book = StockBook()
    reader = JpkMagReader(path)
    for movement in reader.movements():
        book.add_movement(movement, path)
    assert reader.header is not None
    return len(build_observations(book, reader.header, JpkMagSettings(path=path), path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=100, help="size of the file, MB")
    parser.add_argument("--items", type=int, default=5000, help="number of distinct items")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "JPK_MAG.xml"
        write_file(path, arguments.megabytes, arguments.items)
        size = path.stat().st_size

        # tracemalloc slows the read several times, so time and memory are measured apart.
        started = time.perf_counter()
        items = compute_stock(path)
        seconds = time.perf_counter() - started

        tracemalloc.start()
        compute_stock(path)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

    # ru_maxrss is in kilobytes on Linux.
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"file: {size / 1e6:.1f} MB, {items} items")
    print(f"time: {seconds:.1f} s ({size / 1e6 / seconds:.1f} MB/s)")
    print(f"tracemalloc peak of a second read: {peak / 1e6:.1f} MB")
    print(f"max resident set size of the process: {max_rss / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
