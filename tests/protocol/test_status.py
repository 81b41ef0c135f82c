"""The member status message and its topic."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from kooperant.protocol import (
    STATUS_SCHEMA_ID,
    MemberState,
    MemberStatus,
    OfferValidationError,
    OfflineReason,
    TopicError,
    offer_json_schema,
    parse_status,
    parse_status_topic,
    shared_subscription,
    status_json_schema,
    status_subscription,
    status_topic,
    withdrawal_json_schema,
)

CONNECTED_AT = datetime(2026, 12, 4, 9, 30, 15, 250_000, tzinfo=timezone(timedelta(hours=1)))


def online() -> MemberStatus:
    return MemberStatus(
        "pomorskie-metal", "acme", MemberState.ONLINE, CONNECTED_AT, agent_version="0.9.0"
    )


def lost() -> MemberStatus:
    return MemberStatus(
        "pomorskie-metal",
        "acme",
        MemberState.OFFLINE,
        CONNECTED_AT,
        reason=OfflineReason.CONNECTION_LOST,
    )


def test_status_round_trip_online() -> None:
    assert parse_status(online().to_payload()) == online()


def test_status_round_trip_offline() -> None:
    assert parse_status(lost().to_payload()) == lost()


def test_status_payload_fields() -> None:
    data = json.loads(lost().to_payload())

    assert data == {
        "schema": STATUS_SCHEMA_ID,
        "cluster": "pomorskie-metal",
        "member": "acme",
        "state": "offline",
        "connected_at": "2026-12-04T09:30:15.250000+01:00",
        "reason": "connection_lost",
    }


def test_status_online_has_no_reason_field() -> None:
    data = json.loads(online().to_payload())

    assert "reason" not in data
    assert data["agent_version"] == "0.9.0"


def test_status_legacy_major_form_accepted() -> None:
    data = {**online().to_json(), "schema": "kooperant.status/1"}

    assert parse_status(json.dumps(data).encode()) == online()


def test_status_utc_seconds_accepted() -> None:
    data = {**online().to_json(), "connected_at": "2026-12-04T08:30:15Z"}

    status = parse_status(json.dumps(data).encode())

    assert status.connected_at == datetime(2026, 12, 4, 8, 30, 15, tzinfo=UTC)


def test_status_reason_must_match_state() -> None:
    with pytest.raises(ValueError, match="an offline status needs a reason"):
        MemberStatus("c", "m", MemberState.OFFLINE, CONNECTED_AT)
    with pytest.raises(ValueError, match="an online status has none"):
        MemberStatus("c", "m", MemberState.ONLINE, CONNECTED_AT, reason=OfflineReason.STOPPED)


def test_status_naive_time_not_serialised() -> None:
    status = MemberStatus("c", "m", MemberState.ONLINE, datetime(2026, 12, 4, 9, 30))

    with pytest.raises(ValueError, match="naive datetime"):
        status.to_payload()


_ABSENT = object()


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"reason": _ABSENT},
            "invalid status: an offline status needs a reason ('stopped' or 'connection_lost')",
            id="offline-without-reason",
        ),
        pytest.param(
            {"state": "online"},
            "invalid status: an online status has no reason, found 'connection_lost'",
            id="online-with-reason",
        ),
        pytest.param(
            {"reason": "crashed"},
            "invalid status at reason: 'crashed' is not one of ['stopped', 'connection_lost']",
            id="unknown-reason",
        ),
        pytest.param(
            {"state": "away"},
            "invalid status at state: 'away' is not one of ['online', 'offline']",
            id="unknown-state",
        ),
        pytest.param(
            {"connected_at": "2026-12-04T09:30:15"},
            "invalid date-time '2026-12-04T09:30:15' at connected_at: expected RFC 3339 with a "
            "UTC offset, e.g. 2026-12-04T14:00:00+01:00",
            id="time-without-offset",
        ),
        pytest.param(
            {"connected_at": "2026-02-30T09:30:15Z"},
            "invalid date-time '2026-02-30T09:30:15Z' at connected_at: day is out of range for "
            "month",
            id="time-not-a-date",
        ),
        pytest.param(
            {"connected_at": _ABSENT},
            "invalid status at (root): 'connected_at' is a required property",
            id="time-missing",
        ),
        pytest.param(
            {"member": "a/b"},
            "invalid id 'a/b' at member: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            id="bad-member",
        ),
        pytest.param(
            {"agent_version": ""},
            "invalid status at agent_version: '' should be non-empty",
            id="empty-version",
        ),
        pytest.param(
            {"since": "yesterday"},
            "invalid status at (root): Additional properties are not allowed ('since' was "
            "unexpected)",
            id="unknown-field",
        ),
        pytest.param(
            {"schema": "kooperant.offer/1.1"},
            "unsupported schema 'kooperant.offer/1.1': a status names kooperant.status/1.x",
            id="offer-schema",
        ),
    ],
)
def test_status_invalid_rejected(changes: dict[str, object], expected: str) -> None:
    data = {**lost().to_json(), **changes}
    payload = json.dumps({key: value for key, value in data.items() if value is not _ABSENT})

    with pytest.raises(OfferValidationError) as caught:
        parse_status(payload.encode())

    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        pytest.param(b"\xff", "status payload is not UTF-8 JSON", id="not-utf8"),
        pytest.param(b"{", "status payload is not UTF-8 JSON", id="not-json"),
        pytest.param(b"[]", "invalid status at (root): [] is not of type 'object'", id="list"),
        pytest.param(
            b"{" + b" " * 1_000_000 + b"}",
            "payload of 1000002 bytes exceeds the limit of 1000000 bytes",
            id="too-large",
        ),
    ],
)
def test_status_bad_payload_rejected(payload: bytes, expected: str) -> None:
    with pytest.raises(OfferValidationError) as caught:
        parse_status(payload)

    assert str(caught.value).startswith(expected)


def test_status_topic_round_trip() -> None:
    topic = status_topic("pomorskie-metal", "acme")

    assert topic == "kooperant/v1/pomorskie-metal/acme/status"
    assert parse_status_topic(topic) == ("pomorskie-metal", "acme")


def test_status_subscription_one_cluster_and_all() -> None:
    assert status_subscription("pom") == "kooperant/v1/pom/+/status"
    assert status_subscription() == "kooperant/v1/+/+/status"


def test_status_topic_rejects_bad_member() -> None:
    with pytest.raises(TopicError, match="invalid member id 'a/b'"):
        status_topic("pom", "a/b")


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        pytest.param(
            "kooperant/v1/pom/acme/offers/cnc",
            "topic 'kooperant/v1/pom/acme/offers/cnc' is not a status topic "
            "(kooperant/v1/C/M/status)",
            id="offer-topic",
        ),
        pytest.param(
            "kooperant/v1/pom/acme",
            "topic 'kooperant/v1/pom/acme' is not a status topic (kooperant/v1/C/M/status)",
            id="too-short",
        ),
        pytest.param(
            "kooperant/v2/pom/acme/status",
            "topic 'kooperant/v2/pom/acme/status' is not a status topic (kooperant/v1/C/M/status)",
            id="other-root",
        ),
        pytest.param(
            "kooperant/v1/pom/acme/state",
            "topic 'kooperant/v1/pom/acme/state' is not a status topic (kooperant/v1/C/M/status)",
            id="other-channel",
        ),
        pytest.param(
            "kooperant/v1/pom/+/status",
            "invalid member id '+': use 1 to 64 letters",
            id="wildcard-member",
        ),
        pytest.param(
            "kooperant/v1//acme/status",
            "invalid cluster id '': use 1 to 64 letters",
            id="empty-cluster",
        ),
    ],
)
def test_parse_status_topic_rejects(topic: str, expected: str) -> None:
    with pytest.raises(TopicError) as caught:
        parse_status_topic(topic)

    assert str(caught.value).startswith(expected)


def test_shared_subscription_layout() -> None:
    assert (
        shared_subscription("ingest", status_subscription("pom"))
        == "$share/ingest/kooperant/v1/pom/+/status"
    )


@pytest.mark.parametrize("group", ["", "a/b", "+", "#", "-lead", "g" * 65])
def test_shared_subscription_rejects_bad_group(group: str) -> None:
    with pytest.raises(TopicError) as caught:
        shared_subscription(group, "kooperant/v1/+/+/status")

    assert str(caught.value).startswith(f"invalid shared subscription group id {group!r}: ")


@pytest.mark.parametrize("topic_filter", ["", "$share/other/kooperant/v1/+/+/status"])
def test_shared_subscription_rejects_bad_filter(topic_filter: str) -> None:
    with pytest.raises(TopicError, match="for a shared subscription"):
        shared_subscription("ingest", topic_filter)


def test_status_schema_alone_ties_reason_to_state() -> None:
    validator = Draft202012Validator(status_json_schema())
    base = {**lost().to_json()}
    online_with_reason = {**base, "state": "online"}
    offline_without_reason = {key: value for key, value in base.items() if key != "reason"}

    assert list(validator.iter_errors(base)) == []
    assert not validator.is_valid(online_with_reason)
    assert not validator.is_valid(offline_without_reason)


@pytest.mark.parametrize("schema", [offer_json_schema, withdrawal_json_schema, status_json_schema])
def test_message_schema_is_valid_json_schema(schema: Callable[[], dict[str, Any]]) -> None:
    Draft202012Validator.check_schema(schema())
