"""Fixtures for the agent tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import init_answers


@pytest.fixture(autouse=True)
def english_messages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set the agent's messages to English, unless a test sets KOOPERANT_LANG itself.

    Problems are worded in the current language, which is Polish under a Polish or a C locale,
    so tests that compare English text would otherwise pass on one machine and fail on another.
    """
    monkeypatch.setenv("KOOPERANT_LANG", "en")


@pytest.fixture(autouse=True)
def service_audit_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Point init's default audit log for root at a temporary folder that does not exist yet.

    The tests run as root on some machines, where ``init`` would otherwise write
    /var/lib/kooperant into a config and ``install-service`` would create that folder.
    """
    path = tmp_path_factory.mktemp("var-lib") / "kooperant" / "kooperant-audit.db"
    monkeypatch.setattr(init_answers, "SERVICE_AUDIT_LOG", path)
    return path
