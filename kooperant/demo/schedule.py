"""The demo's production plan: a Windows-1250 CSV export in the Polish spreadsheet dialect."""

from __future__ import annotations

import csv
import io
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

# ERP machine code, then (day offset, start hour, duration in hours) of each order.
DEMO_ORDERS: dict[str, list[tuple[int, int, int]]] = {
    "FREZ-01": [(0, 6, 5), (1, 14, 8), (2, 6, 16), (4, 10, 6), (7, 6, 8)],
    "LASER-02": [(0, 14, 6), (1, 6, 4), (3, 6, 8), (8, 14, 8)],
    "PRASA-03": [(1, 6, 8), (2, 14, 8), (5, 6, 4), (9, 6, 12)],
}
HEADER = ["Zlecenie", "Maszyna", "Początek", "Koniec", "Ilość szt."]


def write_demo_schedule(path: Path, now: datetime, timezone: ZoneInfo) -> None:
    """Write orders relative to ``now``'s local date to ``path``, encoded as Windows-1250."""
    today = now.astimezone(timezone).date()
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(HEADER)

    number = 1
    for machine, orders in DEMO_ORDERS.items():
        for day_offset, start_hour, hours in orders:
            start = datetime.combine(today + timedelta(days=day_offset), time(start_hour))
            end = start + timedelta(hours=hours)
            quantity = f"{number * 12},5"
            order_id = f"ZP/{today.year}/{number:04d} łożysko"
            writer.writerow([order_id, machine, _polish(start), _polish(end), quantity])
            number += 1

    path.write_bytes(buffer.getvalue().encode("cp1250"))


def _polish(value: datetime) -> str:
    return value.strftime("%d.%m.%Y %H:%M")
