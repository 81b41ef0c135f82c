"""The offer message: serialisation, JSON Schema and the checks beyond it."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from kooperant.intervals import Interval
from kooperant.protocol import (
    OFFER_SCHEMA_ID,
    Amount,
    Band,
    MachineState,
    Offer,
    OfferValidationError,
    Price,
    ResourceKind,
    parse_offer,
)
from kooperant.protocol.offer import dump_standard_json

WARSAW_WINTER = timezone(timedelta(hours=1))
NOW = datetime(2026, 12, 4, 10, 0, tzinfo=WARSAW_WINTER)


def machine_offer() -> Offer:
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource="cnc-5ax-01",
        kind=ResourceKind.MACHINE,
        generated_at=NOW,
        name="DMU 50 – frezarka 5-osiowa",
        capabilities=("5-axis-milling",),
        state=MachineState.NOT_EXECUTING,
        state_since=NOW - timedelta(minutes=5),
        horizon=Interval(NOW, NOW + timedelta(days=14)),
        free_hours=6.0,
        free_intervals=(
            Interval(NOW, NOW + timedelta(hours=4)),
            Interval(NOW + timedelta(hours=20), NOW + timedelta(hours=22)),
        ),
    )


def test_offer_round_trip_keeps_every_field() -> None:
    offer = machine_offer()

    parsed = parse_offer(offer.to_payload())

    assert parsed == offer


def test_offer_payload_is_utf8_json_with_schema_id() -> None:
    payload = machine_offer().to_payload()

    data = json.loads(payload.decode("utf-8"))

    assert data["schema"] == OFFER_SCHEMA_ID
    assert data["name"] == "DMU 50 – frezarka 5-osiowa"
    assert data["free_intervals"][0] == {
        "start": "2026-12-04T10:00:00+01:00",
        "end": "2026-12-04T14:00:00+01:00",
    }


def test_offer_without_optional_fields_leaves_them_out() -> None:
    offer = Offer(
        "c1",
        "m1",
        "host-1",
        ResourceKind.IT_CAPACITY,
        NOW,
        amounts=(Amount("disk_free", 12.5, "GiB", "/"),),
    )

    data = json.loads(offer.to_payload())

    assert set(data) == {
        "schema",
        "cluster",
        "member",
        "resource",
        "kind",
        "generated_at",
        "amounts",
        "accepts_requests",
    }
    assert data["accepts_requests"] is False
    assert parse_offer(offer.to_payload()) == offer


def test_naive_datetime_cannot_be_serialised() -> None:
    offer = Offer("c1", "m1", "r1", ResourceKind.MACHINE, datetime(2026, 12, 4, 10, 0))

    with pytest.raises(ValueError, match="naive datetime"):
        offer.to_payload()


def valid_json() -> dict[str, object]:
    return json.loads(machine_offer().to_payload())


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"not json at all", "payload is not JSON"),
        (b"\xff\xfe{}", "payload is not UTF-8"),
        (b"[1, 2]", "schema violation at (root)"),
        (
            json.dumps({**valid_json(), "schema": "kooperant.offer/9"}).encode(),
            "unsupported schema 'kooperant.offer/9'",
        ),
        (json.dumps({**valid_json(), "kind": "spaceship"}).encode(), "schema violation at kind"),
        (json.dumps({**valid_json(), "free_hours": -1}).encode(), "schema violation at free_hours"),
        (
            json.dumps({**valid_json(), "member": "a/b"}).encode(),
            "invalid id 'a/b' at member: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
        ),
        (
            json.dumps({**valid_json(), "unit_cost": 10}).encode(),
            "Additional properties are not allowed ('unit_cost'",
        ),
        (
            json.dumps({**valid_json(), "generated_at": "2026-12-04T10:00:00"}).encode(),
            "invalid date-time '2026-12-04T10:00:00' at generated_at: expected RFC 3339 with "
            "a UTC offset, e.g. 2026-12-04T14:00:00+01:00",
        ),
        (
            json.dumps({**valid_json(), "generated_at": "2026-13-45T10:00:00Z"}).encode(),
            "invalid date-time '2026-13-45T10:00:00Z' at generated_at: month must be in 1..12",
        ),
        (
            json.dumps(
                {
                    **valid_json(),
                    "free_intervals": [
                        {"start": "2026-12-04T12:00:00Z", "end": "2026-12-04T10:00:00Z"}
                    ],
                }
            ).encode(),
            "interval at free_intervals/0 ends before it starts",
        ),
        (b"{" + b" " * 1_000_001 + b"}", "exceeds the limit"),
    ],
)
def test_invalid_payload_rejected_with_reason(payload: bytes, expected: str) -> None:
    with pytest.raises(OfferValidationError) as caught:
        parse_offer(payload)

    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"cluster": "-cluster"},
            "invalid id '-cluster' at cluster: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            id="cluster-leading-dash",
        ),
        pytest.param(
            {"resource": "r" * 65},
            f"invalid id '{'r' * 65}' at resource: use 1 to 64 letters",
            id="resource-too-long",
        ),
        pytest.param(
            {"resource": "r" * 5000},
            f"invalid id '{'r' * 100}'... (5000 characters) at resource: ",
            id="resource-huge-shortened",
        ),
        pytest.param(
            {"member": ""},
            "invalid id '' at member: ",
            id="member-empty",
        ),
        pytest.param(
            {"state_since": "04.12.2026 10:00"},
            "invalid date-time '04.12.2026 10:00' at state_since: expected RFC 3339 with a UTC "
            "offset, e.g. 2026-12-04T14:00:00+01:00",
            id="state-since-polish-format",
        ),
        pytest.param(
            {"free_intervals": [{"start": "2026-12-04 10:00+01:00", "end": "2026-12-04T12:00Z"}]},
            "invalid date-time '2026-12-04 10:00+01:00' at free_intervals/0/start: expected RFC "
            "3339",
            id="interval-start-space",
        ),
        pytest.param(
            {"member": "a/b", "resource": "c/d"},
            "invalid id 'a/b' at member: use 1 to 64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (and 1 more)",
            id="two-problems",
        ),
    ],
)
def test_pattern_failure_reason_readable(changes: dict[str, object], expected: str) -> None:
    payload = json.dumps({**valid_json(), **changes}).encode()

    with pytest.raises(OfferValidationError) as caught:
        parse_offer(payload)

    message = str(caught.value)
    assert expected in message
    assert "does not match" not in message
    assert "\\d" not in message


def test_utc_z_suffix_accepted() -> None:
    data = {**valid_json(), "generated_at": "2026-12-04T09:00:00Z"}

    offer = parse_offer(json.dumps(data).encode())

    assert offer.generated_at == datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def supply_offer() -> Offer:
    return Offer(
        cluster="pomorskie-metal",
        member="acme",
        resource="blacha-s235-2mm",
        kind=ResourceKind.SUPPLIES,
        generated_at=NOW,
        amounts=(Amount("stock", None, "sheet", band=Band(100.0, 200.0)),),
        free_hours_band=Band(20.0, None),
        price=Price(42.5, "PLN", "sheet"),
        suppliers=("Huta Przykładowa",),
        customers=("Stocznia A",),
        audience=("formy-sa", "metal-works"),
        expires_at=NOW + timedelta(days=30),
    )


def test_offer_with_bands_and_commercial_data_round_trips() -> None:
    offer = supply_offer()

    parsed = parse_offer(offer.to_payload())

    assert parsed == offer


def test_open_band_serialised_with_null_max() -> None:
    data = json.loads(supply_offer().to_payload())

    assert data["free_hours_band"] == {"min": 20.0, "max": None}
    assert data["amounts"][0] == {
        "quantity": "stock",
        "band": {"min": 100.0, "max": 200.0},
        "unit": "sheet",
    }


def test_band_with_max_not_above_min_rejected() -> None:
    with pytest.raises(ValueError, match="band maximum 10 must be above its minimum 20"):
        Band(20, 10)


def test_amount_needs_value_or_band() -> None:
    with pytest.raises(ValueError, match="needs exactly one of value and band"):
        Amount("stock", None, "sheet")
    with pytest.raises(ValueError, match="needs exactly one of value and band"):
        Amount("stock", 1.0, "sheet", band=Band(0, 10))


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"free_hours_band": {"min": 40, "max": 20}}, "invalid band at free_hours_band"),
        ({"free_hours_band": {"min": -1, "max": 20}}, "free_hours_band/min"),
        ({"amounts": [{"quantity": "stock", "unit": "sheet"}]}, "amounts/0"),
        (
            {"amounts": [{"quantity": "s", "value": 1, "band": {"min": 0, "max": 5}, "unit": "x"}]},
            "amounts/0",
        ),
        ({"price": {"value": 1, "currency": "złoty", "unit": "sheet"}}, "price/currency"),
        ({"audience": []}, "audience"),
        ({"audience": ["a/b"]}, "audience/0"),
        ({"expires_at": "2026-13-01T00:00:00Z"}, "expires_at"),
    ],
)
def test_invalid_new_fields_rejected(changes: dict[str, object], expected: str) -> None:
    payload = json.dumps({**valid_json(), **changes}).encode()

    with pytest.raises(OfferValidationError, match=expected):
        parse_offer(payload)


@pytest.mark.parametrize("accepts", [True, False])
def test_accepts_requests_round_trips(accepts: bool) -> None:
    offer = replace(machine_offer(), accepts_requests=accepts)

    data = json.loads(offer.to_payload())

    assert data["schema"] == "kooperant.offer/1.2"
    assert data["accepts_requests"] is accepts
    assert parse_offer(offer.to_payload()).accepts_requests is accepts


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_accepts_requests_wrong_type_rejected(value: object) -> None:
    payload = json.dumps({**valid_json(), "accepts_requests": value}).encode()

    with pytest.raises(OfferValidationError) as caught:
        parse_offer(payload)

    assert str(caught.value) == (
        f"schema violation at accepts_requests: {value!r} is not of type 'boolean'"
    )


def test_accepts_requests_absent_means_false() -> None:
    data = valid_json()
    del data["accepts_requests"]

    assert parse_offer(json.dumps(data).encode()).accepts_requests is False


def _with_free_hours(token: str) -> bytes:
    """Return a valid offer payload whose ``free_hours`` is the raw JSON text ``token``."""
    text = json.dumps(valid_json())
    marked = text.replace('"free_hours": 6.0', f'"free_hours": {token}')
    assert marked != text
    return marked.encode()


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_standard_constant_rejected(token: str) -> None:
    with pytest.raises(OfferValidationError) as caught:
        parse_offer(_with_free_hours(token))

    assert f"payload is not standard JSON: {token} is not a JSON number" in str(caught.value)


@pytest.mark.parametrize(
    ("token", "shown"),
    [
        pytest.param("1e999", "'1e999'", id="float-overflow"),
        pytest.param("-1e999", "'-1e999'", id="negative-float-overflow"),
        pytest.param("1" + "0" * 400, "'1" + "0" * 99 + "'... (401 characters)", id="int-400"),
        pytest.param("1" + "0" * 5000, "'1" + "0" * 99 + "'... (5001 characters)", id="int-5000"),
    ],
)
def test_number_out_of_range_rejected(token: str, shown: str) -> None:
    with pytest.raises(OfferValidationError) as caught:
        parse_offer(_with_free_hours(token))

    assert f"number {shown} in the payload is out of range" in str(caught.value)


def test_large_finite_number_accepted() -> None:
    offer = parse_offer(_with_free_hours("1e300"))

    assert offer.free_hours == 1e300


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_free_hours_not_serialised(value: float) -> None:
    offer = replace(machine_offer(), free_hours=value)

    with pytest.raises(ValueError) as caught:
        offer.to_payload()

    assert str(caught.value) == (
        f"offer cannot be sent: free_hours is {value}, and JSON has no NaN or infinity"
    )


def test_non_finite_amount_named_by_path() -> None:
    amounts = (Amount("stock", 3.0, "sheet"), Amount("disk", math.inf, "GiB"))
    offer = replace(supply_offer(), amounts=amounts)

    with pytest.raises(ValueError, match="amounts/1/value is inf"):
        offer.to_payload()


def test_dump_standard_json_keeps_other_errors() -> None:
    looped: list[object] = []
    looped.append(looped)

    with pytest.raises(ValueError, match="Circular reference detected"):
        dump_standard_json({"items": looped}, "offer")
