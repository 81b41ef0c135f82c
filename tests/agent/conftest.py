"""Fixtures for the agent tests."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def english_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the agent's messages to English, unless a test sets KOOPERANT_LANG itself.

    Problems are worded in the current language, which is Polish under a Polish or a C locale,
    so tests that compare English text would otherwise pass on one machine and fail on another.
    """
    monkeypatch.setenv("KOOPERANT_LANG", "en")
