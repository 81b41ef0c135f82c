"""subscribed_to: a received topic checked against the client's own filters."""

from __future__ import annotations

import pytest

from kooperant.mqtt import subscribed_to

CASES = [
    ("k/v1/c/acme/requests/r1", ["k/v1/c/acme/requests/+"], True),
    ("k/v1/c/acme/offers/cnc", ["k/v1/c/acme/requests/+"], False),
    ("k/v1/c/beta/requests/r1", ["k/v1/c/acme/requests/+"], False),
    ("k/v1/c/acme/requests/r1/x", ["k/v1/c/acme/requests/+"], False),
    ("k/v1/c/acme/status", ["k/v1/c/+/offers/+", "k/v1/c/+/status"], True),
    ("k/v1/c/acme/offers/cnc", ["$share/ingest/k/v1/c/+/offers/+"], True),
    ("k/v1/c/acme/requests/r1", ["$share/ingest/k/v1/c/+/offers/+"], False),
    ("k/v1/c/acme/offers/cnc", ["k/v1/#"], True),
    ("k/v1/c/acme/offers/cnc", [], False),
]


@pytest.mark.parametrize(("topic", "filters", "expected"), CASES)
def test_subscribed_to_matches_own_filters(topic: str, filters: list[str], expected: bool) -> None:
    assert subscribed_to(topic, filters) is expected
