"""The language of user-facing text and the override for log lines."""

from __future__ import annotations

import pytest

from kooperant.i18n import Catalog, current_language, use_language

MESSAGES = Catalog({"greeting": {"pl": "Dzień dobry, {name}", "en": "Good morning, {name}"}})


def test_environment_chooses_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "en_GB.UTF-8")

    assert current_language() == "en"
    assert MESSAGES("greeting", name="Ola") == "Good morning, Ola"


def test_polish_is_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("KOOPERANT_LANG", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)

    assert current_language() == "pl"


def test_use_language_overrides_inside_block(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", "pl")

    with use_language("en"):
        inside = MESSAGES("greeting", name="Ola")
    after = MESSAGES("greeting", name="Ola")

    assert inside == "Good morning, Ola"
    assert after == "Dzień dobry, Ola"
