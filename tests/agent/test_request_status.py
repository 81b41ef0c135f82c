"""Request counts in the agent's status document and in ``kooperant agent status``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent.status import AgentStatus, RequestCounts, status_document
from agent.status_cli import render_status

NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


def document(requests: RequestCounts | None) -> dict[str, object]:
    status = AgentStatus(
        member="acme",
        cluster="status-test",
        now=NOW,
        started_at=NOW,
        broker_url="mqtt://127.0.0.1:1883",
        broker_connected=True,
        published_messages=0,
        broker_failed_attempts=0,
        policy_error=None,
        adapters=(),
        requests=requests,
    )
    return status_document(status)


def test_status_document_counts_requests() -> None:
    result = document(RequestCounts(open=2, held=1, invalid=3))

    assert result["requests"] == {"open": 2, "held": 1, "invalid": 3}


def test_status_document_without_store() -> None:
    assert document(None)["requests"] is None


@pytest.mark.parametrize(
    ("language", "line"),
    [
        (
            "en",
            "Capacity requests: open 2, accepted and held 1, invalid dropped since the start 3.",
        ),
        (
            "pl",
            "Zapytania o wolne moce: otwarte 2, przyjęte z rezerwacją 1, błędne odrzucone od "
            "uruchomienia 3.",
        ),
    ],
)
def test_status_text_shows_requests(
    monkeypatch: pytest.MonkeyPatch, language: str, line: str
) -> None:
    monkeypatch.setenv("KOOPERANT_LANG", language)

    text = render_status(document(RequestCounts(open=2, held=1, invalid=3)))

    assert line in text.splitlines()
