"""Formatting of dashboard cells in Polish and English."""

from __future__ import annotations

from server.dashboard import format_amounts, format_hours

HOST_AMOUNTS = (
    {"quantity": "cpu_free", "value": 1.25, "unit": "cores"},
    {"quantity": "memory_free", "value": 10.31, "unit": "GiB"},
    {"quantity": "disk_free", "value": 52.0, "unit": "GiB", "label": "/"},
)


def test_amounts_in_polish() -> None:
    assert format_amounts(HOST_AMOUNTS, "pl") == "CPU 1,2 rdz. · pamięć 10,3 GiB · dysk / 52,0 GiB"


def test_amounts_in_english() -> None:
    assert format_amounts(HOST_AMOUNTS, "en") == "CPU 1.2 cores · memory 10.3 GiB · disk / 52.0 GiB"


def test_unknown_quantity_shown_as_sent() -> None:
    amounts = ({"quantity": "pallet_places", "value": 12, "unit": "pcs"},)

    assert format_amounts(amounts, "pl") == "pallet_places 12,0 pcs"


def test_no_amounts_and_no_hours_show_dash() -> None:
    assert format_amounts((), "pl") == "–"
    assert format_hours(None, "en") == "–"
