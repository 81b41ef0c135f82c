"""The request commands (requests, accept, decline, release): output, answers and errors."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.outbox import Outbox
from agent.requests import HoldEnd, RequestState, RequestStore, StoredRequest
from kooperant.intervals import Interval
from kooperant.protocol.answer import AnswerState, parse_answer
from kooperant.protocol.request import CapacityRequest, Contact
from tests.agent.request_samples import (
    MEMBER,
    OTHER_ID,
    RECEIVED,
    REQUEST_ID,
    SLOT,
    amount_request,
    record_offer,
    slot_request,
)

CLUSTER = "requests-cli"
LONG = timedelta(days=3650)
DECIDED = RECEIVED + timedelta(hours=2)
LATER_ID = "7a2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
FUTURE_SLOT = Interval(SLOT.start + LONG, SLOT.end + LONG)


def invoke(*arguments: str, language: str = "en") -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(arguments), env={"KOOPERANT_LANG": language})
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def config(tmp_path: Path) -> Path:
    (tmp_path / "policy.yaml").write_text("share: []\n", encoding="utf-8")
    path = tmp_path / "agent.yaml"
    path.write_text(
        f"member: {MEMBER}\ncluster: {CLUSTER}\nbroker:\n  url: mqtt://127.0.0.1:1\n"
        "policy: policy.yaml\naudit_log: audit.db\ntimezone: Europe/Warsaw\n",
        encoding="utf-8",
    )
    database = tmp_path / "audit.db"
    record_offer(database, CLUSTER, "frezarka-1", accepts_requests=True)
    record_offer(database, CLUSTER, "it-team", accepts_requests=True)
    store_request(database, slot_request(CLUSTER, slot=FUTURE_SLOT, expires_in=LONG))
    store_request(database, amount_request(CLUSTER))
    return path


def store_request(path: Path, request: CapacityRequest) -> None:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        store.store(request, RECEIVED, lambda payload: None)


def stored(path: Path) -> dict[str, StoredRequest]:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        return {item.request_id: item for item in store.read()}


def answers(path: Path) -> list[tuple[str, str | None]]:
    with Outbox(path) as outbox:
        parsed = [parse_answer(message.payload) for message in outbox.queued() if message.payload]
    return [(str(answer.state), answer.reason) for answer in parsed]


def change(path: Path, action: str) -> None:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        if action == "accept":
            store.decide(REQUEST_ID, True, None, DECIDED)
        elif action == "decline":
            store.decide(REQUEST_ID, False, "Zajęte.", DECIDED)
        elif action == "clear":
            store.cleared(REQUEST_ID, DECIDED)
        elif action == "release":
            store.decide(REQUEST_ID, True, None, DECIDED)
            store.end_hold(REQUEST_ID, HoldEnd.RELEASED, DECIDED + timedelta(hours=1))


def test_accept_queues_accepted_answer(config: Path) -> None:
    database = config.parent / "audit.db"

    status, output, error = invoke("accept", REQUEST_ID, "--config", str(config))

    assert status == 0, error
    assert output.splitlines() == [
        f"Accepted request {REQUEST_ID}.",
        "The agent stops offering 2036-02-29 08:00 - 12:00 (+01:00) of frezarka-1 until the ERP "
        "schedule covers that time, the slot ends or you run: kooperant agent release "
        f"{REQUEST_ID} --config {config}",
        "The answer is queued for the broker. A running agent sends it within a second of "
        "reaching the broker; otherwise the agent sends it at its next start.",
    ]
    assert stored(database)[REQUEST_ID].state is RequestState.ACCEPTED
    assert answers(database)[-1] == (AnswerState.ACCEPTED, None)


def test_accept_amount_names_subtraction(config: Path) -> None:
    later = amount_request(CLUSTER, request_id=LATER_ID, at=RECEIVED + LONG)
    store_request(config.parent / "audit.db", later)

    status, output, _ = invoke("accept", LATER_ID, "--config", str(config))

    assert status == 0
    assert output.splitlines()[1] == (
        "The agent subtracts 3 days from person_days in the offer of it-team until you run: "
        f"kooperant agent release {LATER_ID} --config {config}"
    )


def test_decline_queues_reason(config: Path) -> None:
    database = config.parent / "audit.db"

    status, output, _ = invoke(
        "decline",
        REQUEST_ID,
        "--reason",
        "Maszyna zajęta do końca miesiąca.",
        "--config",
        str(config),
    )

    assert status == 0
    assert output.splitlines()[0] == f"Declined request {REQUEST_ID}."
    assert stored(database)[REQUEST_ID].state is RequestState.DECLINED
    assert answers(database)[-1] == (AnswerState.DECLINED, "Maszyna zajęta do końca miesiąca.")


def test_release_ends_hold(config: Path) -> None:
    database = config.parent / "audit.db"
    change(database, "accept")

    status, output, _ = invoke("release", REQUEST_ID, "--config", str(config))

    assert status == 0
    assert output.splitlines() == [
        f"Released request {REQUEST_ID}: its hold no longer keeps time or amount out of the offer "
        "of frezarka-1. A running agent publishes the offer within a second, otherwise at its "
        "next start. ERP orders, other accepted requests and the policy still apply to it."
    ]
    assert stored(database)[REQUEST_ID].hold_end is HoldEnd.RELEASED
    assert len(answers(database)) == 3


ERRORS = [
    (
        "unknown id",
        None,
        ["accept", "deadbeef"],
        "Unknown request 'deadbeef': no stored request has this id, or starts with it when it "
        "has at least 8 characters. List the requests with: kooperant agent requests --all "
        "--config {config}",
    ),
    (
        "prefix too short",
        None,
        ["accept", "3f2b8c1"],
        "Unknown request '3f2b8c1': no stored request has this id, or starts with it when it "
        "has at least 8 characters. List the requests with: kooperant agent requests --all "
        "--config {config}",
    ),
    (
        "ambiguous prefix",
        None,
        ["accept", "3f2b8c1e"],
        "Request id '3f2b8c1e' is ambiguous: 2 requests start with it "
        f"({REQUEST_ID}, {OTHER_ID}). Give more characters.",
    ),
    (
        "already accepted",
        "accept",
        ["decline", REQUEST_ID, "--reason", "Nie."],
        f"Request {REQUEST_ID} was already accepted at 2026-03-02 12:00+01:00; a decision "
        "cannot be changed.",
    ),
    (
        "already declined",
        "decline",
        ["accept", REQUEST_ID],
        f"Request {REQUEST_ID} was already declined at 2026-03-02 12:00+01:00; a decision "
        "cannot be changed.",
    ),
    (
        "closed",
        "clear",
        ["accept", REQUEST_ID],
        f"Request {REQUEST_ID} was closed by the aggregator at 2026-03-02 12:00+01:00, because "
        "it expired or the requester withdrew it; it can no longer be answered.",
    ),
    (
        "expired",
        None,
        ["accept", OTHER_ID],
        f"Request {OTHER_ID} expired at 2026-03-04 10:00+01:00; the aggregator no longer takes "
        "an answer to it.",
    ),
    (
        "reason missing",
        None,
        ["decline", REQUEST_ID],
        "Missing --reason: give the reason for declining, which the requester sees, e.g. "
        '--reason "Maszyna zajęta do końca miesiąca."',
    ),
    (
        "reason blank",
        None,
        ["decline", REQUEST_ID, "--reason", "  "],
        "Invalid --reason '  ': it is empty or only whitespace. Write why you decline.",
    ),
    (
        "reason empty",
        None,
        ["decline", REQUEST_ID, "--reason", ""],
        "Invalid --reason '': it is empty or only whitespace. Write why you decline.",
    ),
    (
        "reason too long",
        None,
        ["decline", REQUEST_ID, "--reason", "x" * 501],
        "Invalid --reason: 501 characters, the maximum is 500. Shorten it.",
    ),
    (
        "reason control character",
        None,
        ["decline", REQUEST_ID, "--reason", "Zajęte\tdo piątku"],
        "Invalid --reason: it contains the control character '\\t' at position 7. Write it as "
        "plain text on one line.",
    ),
    (
        "release open",
        None,
        ["release", REQUEST_ID],
        f"Request {REQUEST_ID} is not accepted (open), so it holds nothing to release.",
    ),
    (
        "release twice",
        "release",
        ["release", REQUEST_ID],
        f"Request {REQUEST_ID} was already released at 2026-03-02 13:00+01:00.",
    ),
]


@pytest.mark.parametrize(
    ("setup", "arguments", "expected"),
    [case[1:] for case in ERRORS],
    ids=[case[0] for case in ERRORS],
)
def test_request_command_rejects_input(
    config: Path, setup: str | None, arguments: list[str], expected: str
) -> None:
    database = config.parent / "audit.db"
    if setup is not None:
        change(database, setup)
    before = answers(database)

    status, _, error = invoke(*arguments, "--config", str(config))

    assert status == 2
    assert error.strip() == expected.format(config=config)
    assert answers(database) == before


POLISH_ERRORS = [
    (
        ["accept", "3f2b8c1e"],
        "Identyfikator '3f2b8c1e' jest niejednoznaczny: zaczyna się od niego 2 zapytań "
        f"({REQUEST_ID}, {OTHER_ID}). Podaj więcej znaków.",
    ),
    (
        ["decline", REQUEST_ID, "--reason", "x" * 501],
        "Błędny --reason: ma 501 znaków, a dozwolone jest najwyżej 500. Skróć go.",
    ),
    (
        ["accept", OTHER_ID],
        f"Zapytanie {OTHER_ID} wygasło 2026-03-04 10:00+01:00; agregator nie przyjmuje już "
        "odpowiedzi na nie.",
    ),
]


@pytest.mark.parametrize(("arguments", "expected"), POLISH_ERRORS)
def test_request_command_errors_in_polish(
    config: Path, arguments: list[str], expected: str
) -> None:
    status, _, error = invoke(*arguments, "--config", str(config), language="pl")

    assert status == 2
    assert error.strip() == expected


def test_requests_lists_open_only(config: Path) -> None:
    status, output, _ = invoke("requests", "--config", str(config))

    assert status == 0
    assert output.splitlines() == [
        f"{REQUEST_ID}  open",
        "  From: beta-tools, Anna Nowak (anna.nowak@beta.example, +48 58 123 45 67)",
        "  Offer: frezarka-1",
        "  Slot: 2036-02-29 08:00 - 12:00 (+01:00)",
        "  Message: Potrzebujemy frezowania 5-osiowego.",
        "  Received: 2026-03-02 10:00+01:00, expires: 2036-02-28 10:00+01:00",
    ]


def test_requests_all_shows_expired_amount(config: Path) -> None:
    status, output, _ = invoke("requests", "--all", "--config", str(config))

    blocks = output.split("\n\n")
    assert status == 0
    assert len(blocks) == 2
    assert blocks[1].splitlines()[:4] == [
        f"{OTHER_ID}  expired, not decided",
        "  From: beta-tools, Jan Kowalski (jan@beta.example)",
        "  Offer: it-team",
        "  Amount: 3 days of person_days (python)",
    ]


def test_requests_json_lists_held(config: Path) -> None:
    change(config.parent / "audit.db", "accept")

    status, output, _ = invoke("requests", "--all", "--json", "--config", str(config))

    documents = json.loads(output)
    assert status == 0
    assert [item["state"] for item in documents] == ["held", "expired"]
    assert documents[0]["slot"] == {
        "start": "2036-02-29T07:00:00+00:00",
        "end": "2036-02-29T11:00:00+00:00",
    }
    assert documents[1]["amount"] == {
        "quantity": "person_days",
        "value": 3.0,
        "unit": "days",
        "label": "python",
    }


def test_requests_none_open(config: Path) -> None:
    change(config.parent / "audit.db", "decline")

    status, output, _ = invoke("requests", "--config", str(config), language="pl")

    assert status == 0
    assert output.strip() == (
        "Brak otwartych zapytań (zapisanych łącznie: 2; wypisuje je kooperant agent requests "
        "--all)."
    )


def test_requests_escapes_control_characters(config: Path) -> None:
    database = config.parent / "audit.db"
    change(database, "decline")
    hostile = dataclasses.replace(
        slot_request(CLUSTER, request_id=LATER_ID, slot=FUTURE_SLOT, expires_in=LONG),
        contact=Contact("Anna\nOffer: laser-9\nSlot: 2036-01-01", email="a\x1b[2J@beta.example"),
        message="Tekst \u202eodwrócony\u202c, \u2066izolowany\u2069\r\tkoniec\u2028",
    )
    store_request(database, hostile)

    status, output, _ = invoke("requests", "--config", str(config))

    assert status == 0
    assert output.splitlines() == [
        f"{LATER_ID}  open",
        "  From: beta-tools, Anna\\nOffer: laser-9\\nSlot: 2036-01-01 (a\\x1b[2J@beta.example)",
        "  Offer: frezarka-1",
        "  Slot: 2036-02-29 08:00 - 12:00 (+01:00)",
        "  Message: Tekst \\u202eodwrócony\\u202c, \\u2066izolowany\\u2069\\r\\tkoniec\\u2028",
        "  Received: 2026-03-02 10:00+01:00, expires: 2036-02-28 10:00+01:00",
    ]


@pytest.mark.parametrize(
    ("reason", "shown", "position"),
    [
        ("Zajęte\u202e do piątku", "'\\u202e'", 7),
        ("\u2066Zajęte", "'\\u2066'", 1),
        ("Zajęte\u200b", "'\\u200b'", 7),
        ("Zajęte\x1b[31m", "'\\x1b'", 7),
    ],
    ids=["bidi override", "bidi isolate", "zero width space", "escape"],
)
def test_decline_rejects_format_characters(
    config: Path, reason: str, shown: str, position: int
) -> None:
    database = config.parent / "audit.db"
    before = answers(database)

    status, _, error = invoke("decline", REQUEST_ID, "--reason", reason, "--config", str(config))

    assert status == 2
    assert error.strip() == (
        f"Invalid --reason: it contains the control character {shown} at position {position}. "
        "Write it as plain text on one line."
    )
    assert answers(database) == before


def test_release_names_holds_that_remain(config: Path) -> None:
    database = config.parent / "audit.db"
    overlapping = slot_request(CLUSTER, request_id=LATER_ID, slot=FUTURE_SLOT, expires_in=LONG)
    store_request(database, overlapping)
    with Outbox(database) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        # The owner accepted both, the second with --force.
        store.decide(REQUEST_ID, True, None, DECIDED)
        store.decide(LATER_ID, True, None, DECIDED)

    status, output, _ = invoke("release", REQUEST_ID, "--config", str(config), language="pl")

    assert status == 0
    assert output.splitlines()[1] == (
        f"Przyjęte zapytania {LATER_ID} nadal rezerwują część tego czasu lub ilości, więc "
        "pozostaje ona poza ofertą do końca ich rezerwacji."
    )


def test_request_commands_take_upper_case_id(config: Path) -> None:
    database = config.parent / "audit.db"
    later = slot_request(CLUSTER, request_id=LATER_ID, slot=FUTURE_SLOT, expires_in=LONG)
    store_request(database, later)

    accepted = invoke("accept", REQUEST_ID.upper(), "--config", str(config))
    released = invoke("release", REQUEST_ID.upper(), "--config", str(config))
    declined = invoke("decline", LATER_ID[:8].upper(), "--reason", "Nie.", "--config", str(config))

    assert accepted[0] == 0, accepted[2]
    assert released[0] == 0, released[2]
    assert declined[0] == 0, declined[2]
    assert stored(database)[REQUEST_ID].hold_end is HoldEnd.RELEASED
    assert stored(database)[LATER_ID].state is RequestState.DECLINED


def test_request_command_unknown_upper_case_id(config: Path) -> None:
    status, _, error = invoke("accept", "DEADBEEF", "--config", str(config))

    assert status == 2
    assert error.startswith("Unknown request 'DEADBEEF': ")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [([], "No requests stored yet."), (["--json"], "[]"), (["--all"], "No requests stored yet.")],
    ids=["text", "json", "all"],
)
def test_requests_fresh_config_creates_no_file(
    config: Path, arguments: list[str], expected: str
) -> None:
    database = config.parent / "audit.db"
    database.unlink()

    status, output, _ = invoke("requests", *arguments, "--config", str(config))

    assert status == 0
    assert output.strip() == expected
    assert not database.exists()


def test_requests_hints_cleared_hold(config: Path) -> None:
    database = config.parent / "audit.db"
    change(database, "accept")
    with Outbox(database) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        store.cleared(REQUEST_ID, DECIDED + timedelta(minutes=5))

    status, output, _ = invoke("requests", "--all", "--config", str(config))

    held = output.split("\n\n")[0].splitlines()
    assert status == 0
    assert held[0] == f"{REQUEST_ID}  accepted, held"
    assert held[-1] == (
        "  Cleared by the aggregator at 2026-03-02 12:05+01:00. Usually it recorded your "
        "acceptance, but the request may have expired or been withdrawn before your answer "
        "arrived, and the agent cannot tell which. Check the request on the dashboard's "
        "/requests page. If it shows withdrawn or expired, end the hold with: kooperant agent "
        f"release {REQUEST_ID} --config {config}"
    )


@pytest.mark.parametrize("setup", ["accept", "release"])
def test_requests_no_hint_without_cleared_hold(config: Path, setup: str) -> None:
    database = config.parent / "audit.db"
    change(database, setup)
    if setup == "release":
        with Outbox(database) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
            store.cleared(REQUEST_ID, DECIDED + timedelta(hours=2))

    status, output, _ = invoke("requests", "--all", "--config", str(config))

    assert status == 0
    assert "Cleared by the aggregator" not in output


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "1234567.25 days of person_days"), ("pl", "1234567,25")],
)
def test_requests_amount_keeps_every_digit(config: Path, language: str, expected: str) -> None:
    large = "5b0e7c1e-2a4b-4c7e-9d3f-0b1a2c3d4e5f"
    store_request(
        config.parent / "audit.db",
        amount_request(CLUSTER, request_id=large, value=1234567.25, at=RECEIVED + LONG),
    )

    status, output, _ = invoke("requests", "--all", "--config", str(config), language=language)

    assert status == 0
    assert expected in output
    assert "e+06" not in output
