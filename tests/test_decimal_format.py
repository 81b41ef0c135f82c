"""``format_decimal``: numbers in Polish and English with every digit and no exponent."""

from __future__ import annotations

import pytest

from kooperant.i18n import format_decimal


@pytest.mark.parametrize(
    ("value", "polish", "english"),
    [
        (1.5, "1,5", "1.5"),
        (3.0, "3", "3"),
        (40.125, "40,125", "40.125"),
        (1e-05, "0,00001", "0.00001"),
        (1234567.0, "1234567", "1234567"),
        (1e16, "10000000000000000", "10000000000000000"),
        (100.0, "100", "100"),
        (0.1 + 0.2, "0,30000000000000004", "0.30000000000000004"),
    ],
)
def test_format_decimal_languages(value: float, polish: str, english: str) -> None:
    assert format_decimal(value, "pl") == polish
    assert format_decimal(value, "en") == english


def test_format_decimal_not_finite() -> None:
    assert format_decimal(float("inf"), "pl") == "inf"
