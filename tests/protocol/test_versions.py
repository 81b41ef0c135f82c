"""Schema versions: which ``NAME/MAJOR.MINOR`` values the readers accept."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

import pytest

from kooperant.protocol import (
    OFFER_SCHEMA_ID,
    STATUS_SCHEMA_ID,
    WITHDRAWAL_SCHEMA_ID,
    MemberState,
    MemberStatus,
    OfferValidationError,
    Withdrawal,
    WithdrawalReason,
    parse_offer,
    parse_status,
    parse_withdrawal,
)
from kooperant.protocol.versions import SchemaVersion, parse_schema_id
from tests.protocol.test_offer import machine_offer

NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def offer_with_schema(schema: object, **extra: object) -> bytes:
    """Return the test offer as ``schema`` names it; 1.2 added ``accepts_requests``."""
    data = {**machine_offer().to_json(), "schema": schema}
    if schema in ("kooperant.offer/1", "kooperant.offer/1.0", "kooperant.offer/1.1"):
        del data["accepts_requests"]
    return json.dumps({**data, **extra}).encode()


def test_writers_use_current_versions() -> None:
    assert OFFER_SCHEMA_ID == "kooperant.offer/1.2"
    assert WITHDRAWAL_SCHEMA_ID == "kooperant.withdrawal/1.1"
    assert STATUS_SCHEMA_ID == "kooperant.status/1.0"
    assert json.loads(machine_offer().to_payload())["schema"] == OFFER_SCHEMA_ID


@pytest.mark.parametrize(
    "schema",
    ["kooperant.offer/1", "kooperant.offer/1.0", "kooperant.offer/1.1", "kooperant.offer/1.2"],
)
def test_known_versions_accepted(schema: str) -> None:
    assert parse_offer(offer_with_schema(schema)) == machine_offer()


@pytest.mark.parametrize("schema", ["kooperant.offer/1.0", "kooperant.offer/1.1"])
def test_older_minor_with_accepts_requests_rejected(schema: str) -> None:
    payload = offer_with_schema(schema, accepts_requests=True)

    with pytest.raises(OfferValidationError) as caught:
        parse_offer(payload)

    assert str(caught.value) == (
        f"invalid field 'accepts_requests' in a {schema} message: it was added in "
        "kooperant.offer/1.2; send schema kooperant.offer/1.2 or leave the field out"
    )


def test_offer_1_1_does_not_accept_requests() -> None:
    offer = parse_offer(offer_with_schema("kooperant.offer/1.1"))

    assert offer.accepts_requests is False


def test_newer_minor_keeps_accepts_requests() -> None:
    offer = parse_offer(offer_with_schema("kooperant.offer/1.9", accepts_requests=True, x=1))

    assert offer.accepts_requests is True


def test_newer_minor_unknown_fields_dropped(caplog: pytest.LogCaptureFixture) -> None:
    payload = offer_with_schema("kooperant.offer/1.5", carbon_kg=12.5, zeta={"a": 1})

    with caplog.at_level(logging.DEBUG, logger="kooperant.protocol.versions"):
        offer = parse_offer(payload)

    assert offer == machine_offer()
    assert "['carbon_kg', 'zeta']" in caplog.text
    assert "kooperant.offer/1.5" in caplog.text


def test_newer_minor_known_fields_still_validated() -> None:
    payload = offer_with_schema("kooperant.offer/1.5", carbon_kg=1, free_hours=-1)

    with pytest.raises(OfferValidationError, match="schema violation at free_hours"):
        parse_offer(payload)


def test_current_minor_unknown_field_rejected() -> None:
    with pytest.raises(OfferValidationError, match="Additional properties are not allowed"):
        parse_offer(offer_with_schema("kooperant.offer/1.2", carbon_kg=12.5))


def test_newer_minor_withdrawal_accepted() -> None:
    withdrawal = Withdrawal("c1", "m1", "r1", NOW, WithdrawalReason.NOT_SHARED)
    data = {**withdrawal.to_json(), "schema": "kooperant.withdrawal/1.7", "note": "x"}

    assert parse_withdrawal(json.dumps(data).encode()) == withdrawal


def test_newer_minor_status_accepted() -> None:
    status = MemberStatus("c1", "m1", MemberState.ONLINE, NOW)
    data = {**status.to_json(), "schema": "kooperant.status/1.3", "uptime_s": 5}

    assert parse_status(json.dumps(data).encode()) == status


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        pytest.param(
            "kooperant.offer/2",
            "unsupported schema 'kooperant.offer/2': this aggregator reads major version 1 "
            "(kooperant.offer/1.x); upgrade the aggregator",
            id="major-2",
        ),
        pytest.param(
            "kooperant.offer/2.0",
            "unsupported schema 'kooperant.offer/2.0': this aggregator reads major version 1 "
            "(kooperant.offer/1.x); upgrade the aggregator",
            id="major-2-minor-0",
        ),
        pytest.param(
            "kooperant.offer/0.9",
            "unsupported schema 'kooperant.offer/0.9': this aggregator reads major version 1 "
            "(kooperant.offer/1.x); upgrade the agent",
            id="major-0",
        ),
        pytest.param(
            "kooperant.withdrawal/1.1",
            "unsupported schema 'kooperant.withdrawal/1.1': an offer names kooperant.offer/1.x",
            id="other-message",
        ),
        pytest.param(
            "x/9",
            "unsupported schema 'x/9': an offer names kooperant.offer/1.x",
            id="other-name",
        ),
        pytest.param(
            "kooperant.offer",
            "invalid schema 'kooperant.offer': expected NAME/MAJOR or NAME/MAJOR.MINOR, "
            "here kooperant.offer/1.x",
            id="no-version",
        ),
        pytest.param(
            "kooperant.offer/1.",
            "invalid schema 'kooperant.offer/1.': expected NAME/MAJOR or NAME/MAJOR.MINOR, "
            "here kooperant.offer/1.x",
            id="empty-minor",
        ),
        pytest.param(
            "kooperant.offer/01",
            "invalid schema 'kooperant.offer/01': expected NAME/MAJOR or NAME/MAJOR.MINOR, "
            "here kooperant.offer/1.x",
            id="leading-zero",
        ),
        pytest.param(
            "kooperant.offer/1.1.1",
            "invalid schema 'kooperant.offer/1.1.1': expected NAME/MAJOR or NAME/MAJOR.MINOR, "
            "here kooperant.offer/1.x",
            id="three-parts",
        ),
        pytest.param(
            "kooperant.offer/v1",
            "invalid schema 'kooperant.offer/v1': expected NAME/MAJOR or NAME/MAJOR.MINOR, "
            "here kooperant.offer/1.x",
            id="letter-v",
        ),
        pytest.param(
            "k" * 300,
            f"invalid schema '{'k' * 100}'... (300 characters): expected NAME/MAJOR or "
            "NAME/MAJOR.MINOR, here kooperant.offer/1.x",
            id="long-shortened",
        ),
        pytest.param(
            "kooperant." + "x" * 300 + "/1",
            f"unsupported schema 'kooperant.{'x' * 90}'... (312 characters): an offer names "
            "kooperant.offer/1.x",
            id="long-name-shortened",
        ),
        pytest.param(
            1.1,
            "schema violation at schema: 1.1 is not of type 'string'",
            id="number",
        ),
    ],
)
def test_offer_bad_schema_rejected(schema: object, expected: str) -> None:
    with pytest.raises(OfferValidationError) as caught:
        parse_offer(offer_with_schema(schema))

    assert str(caught.value) == expected


def test_withdrawal_major_2_rejected() -> None:
    data = Withdrawal("c1", "m1", "r1", NOW, WithdrawalReason.EXPIRED).to_json()
    data["schema"] = "kooperant.withdrawal/2"

    with pytest.raises(OfferValidationError) as caught:
        parse_withdrawal(json.dumps(data).encode())

    assert str(caught.value) == (
        "unsupported schema 'kooperant.withdrawal/2': this aggregator reads major version 1 "
        "(kooperant.withdrawal/1.x); upgrade the aggregator"
    )


def test_status_major_2_rejected() -> None:
    data = MemberStatus("c1", "m1", MemberState.ONLINE, NOW).to_json()
    data["schema"] = "kooperant.status/2.0"

    with pytest.raises(OfferValidationError) as caught:
        parse_status(json.dumps(data).encode())

    assert str(caught.value) == (
        "unsupported schema 'kooperant.status/2.0': this aggregator reads major version 1 "
        "(kooperant.status/1.x); upgrade the aggregator"
    )


def test_offer_missing_schema_rejected() -> None:
    data = machine_offer().to_json()
    del data["schema"]

    with pytest.raises(OfferValidationError, match="'schema' is a required property"):
        parse_offer(json.dumps(data).encode())


def test_schema_id_parts() -> None:
    assert parse_schema_id("kooperant.offer/1") == SchemaVersion("kooperant.offer", 1, 0)
    assert parse_schema_id("kooperant.offer/1.12") == SchemaVersion("kooperant.offer", 1, 12)
    assert str(SchemaVersion("kooperant.status", 1, 0)) == "kooperant.status/1.0"


def test_schema_id_malformed_named() -> None:
    with pytest.raises(ValueError, match="schema id 'offer' is not of the form NAME/MAJOR"):
        parse_schema_id("offer")
