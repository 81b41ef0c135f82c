"""Formatting of dashboard cells in Polish and English, bands included."""

from __future__ import annotations

import pytest

from kooperant.i18n import Language
from kooperant.protocol import Band
from server.dashboard import format_amounts, format_band, format_hours, format_number

HOST_AMOUNTS = (
    {"quantity": "cpu_free", "value": 1.25, "unit": "cores"},
    {"quantity": "memory_free", "value": 10.31, "unit": "GiB"},
    {"quantity": "disk_free", "value": 52.0, "unit": "GiB", "label": "/"},
)


def test_amounts_in_polish() -> None:
    shown = format_amounts(HOST_AMOUNTS, "pl")

    assert shown == "CPU 1,25 rdz. · pamięć 10,31 GiB · dysk / 52,0 GiB"


def test_amounts_in_english() -> None:
    shown = format_amounts(HOST_AMOUNTS, "en")

    assert shown == "CPU 1.25 cores · memory 10.31 GiB · disk / 52.0 GiB"


def test_unknown_quantity_shown_as_sent() -> None:
    amounts = ({"quantity": "widgets", "value": 12, "unit": "boxes"},)

    assert format_amounts(amounts, "pl") == "widgets 12,0 boxes"


def test_no_amounts_and_no_hours_show_dash() -> None:
    assert format_amounts((), "pl") == "–"
    assert format_hours(None, "en") == "–"


@pytest.mark.parametrize(
    ("band", "language", "shown"),
    [
        (Band(20, 40), "pl", "20–40"),
        (Band(80, None), "en", "≥ 80"),
        (Band(2.5, 7.5), "pl", "2,5–7,5"),
        (Band(2.5, 7.5), "en", "2.5–7.5"),
        (Band(0, 8), "en", "0–8"),
    ],
)
def test_band_shown_as_range(band: Band, language: Language, shown: str) -> None:
    assert format_band(band, language) == shown


def test_banded_amount_shows_range() -> None:
    amounts = (
        {"quantity": "pallet_places", "band": {"min": 100, "max": 200}, "unit": "pallets"},
        {"quantity": "disk_free", "band": {"min": 500, "max": None}, "unit": "GiB", "label": "/"},
    )

    assert format_amounts(amounts, "pl") == "miejsca paletowe 100–200 pal. · dysk / ≥ 500 GiB"


@pytest.mark.parametrize(
    ("value", "language", "shown"),
    [
        (2.0, "pl", "2,0"),
        (0.75, "pl", "0,75"),
        (0.04, "pl", "0,04"),
        (0.04, "en", "0.04"),
        (12.5, "pl", "12,5"),
        (1234567.5, "pl", "1234567,5"),
        (1e20, "en", "100000000000000000000.0"),
        (0.001, "en", "0.0"),
    ],
)
def test_number_keeps_two_decimals(value: float, language: Language, shown: str) -> None:
    assert format_number(value, language) == shown


@pytest.mark.parametrize(
    ("amount", "language", "shown"),
    [
        (
            {"quantity": "pallet_places", "value": 40, "unit": "pallets"},
            "pl",
            "miejsca paletowe 40,0 pal.",
        ),
        ({"quantity": "floor_area", "value": 12.5, "unit": "m2"}, "pl", "powierzchnia 12,5 m²"),
        ({"quantity": "floor_area", "value": 12.5, "unit": "m2"}, "en", "floor area 12.5 m²"),
        ({"quantity": "person_days", "value": 3, "unit": "days"}, "pl", "osobodni 3,0 dni"),
        ({"quantity": "surplus", "value": 7, "unit": "pcs"}, "pl", "nadwyżka 7,0 szt."),
        ({"quantity": "stock", "value": 7, "unit": "kg"}, "pl", "stan 7,0 kg"),
        ({"quantity": "incoming", "value": 2, "unit": "kg"}, "pl", "dostawy w drodze 2,0 kg"),
        ({"quantity": "expected_stock", "value": 9, "unit": "kg"}, "en", "expected stock 9.0 kg"),
        ({"quantity": "sheets", "value": 5, "unit": "pcs"}, "en", "sheets 5.0 pcs"),
    ],
)
def test_adapter_quantities_translated(
    amount: dict[str, object], language: Language, shown: str
) -> None:
    assert format_amounts((amount,), language) == shown
