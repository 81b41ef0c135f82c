"""Receiving capacity requests: stored once, answered once, cleared, invalid ones dropped."""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from agent.outbox import Outbox, OutgoingMessage
from agent.policy import parse_policy
from agent.request_inbox import RequestInbox
from agent.request_offers import CycleDecisions, offer_decisions
from agent.requests import RequestState, RequestStore
from kooperant.mqtt import ReceivedMessage
from kooperant.protocol import Offer, ResourceKind, offer_topic
from kooperant.protocol.answer import AnswerState, parse_answer
from kooperant.protocol.topics import answer_topic, request_topic
from tests.agent.request_samples import (
    MEMBER,
    OTHER_ID,
    RECEIVED,
    REQUEST_ID,
    record_offer,
    slot_request,
)

CLUSTER = "inbox-test"
TOPIC = request_topic(CLUSTER, MEMBER, REQUEST_ID)
ANSWERS = answer_topic(CLUSTER, MEMBER, REQUEST_ID)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "audit.db"
    record_offer(path, CLUSTER, "frezarka-1", accepts_requests=True)
    return path


def receive(path: Path, topic: str, payload: bytes) -> tuple[bool, RequestInbox]:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        inbox = RequestInbox(store, lambda: RECEIVED)
        return inbox.receive(topic, payload), inbox


def queued(path: Path) -> list[tuple[str, bytes]]:
    with Outbox(path) as outbox:
        return [(message.topic, message.payload) for message in outbox.queued()]


def stored(path: Path) -> list[tuple[str, RequestState, str | None]]:
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        return [(item.request_id, item.state, item.reason) for item in store.read()]


def test_inbox_stores_and_answers_delivered(path: Path) -> None:
    handled, _ = receive(path, TOPIC, slot_request(CLUSTER).to_payload())

    messages = queued(path)
    assert handled
    assert stored(path) == [(REQUEST_ID, RequestState.OPEN, None)]
    assert [topic for topic, _ in messages] == [ANSWERS]
    answer = parse_answer(messages[0][1])
    assert (answer.state, answer.resource, answer.decided_at) == (
        AnswerState.DELIVERED,
        "frezarka-1",
        RECEIVED,
    )
    assert answer.envelope is not None


def test_inbox_answers_redelivery_once(path: Path) -> None:
    payload = slot_request(CLUSTER).to_payload()
    receive(path, TOPIC, payload)

    handled, _ = receive(path, TOPIC, payload)

    assert not handled
    assert len(queued(path)) == 1


def test_inbox_keeps_decided_request_decided(path: Path) -> None:
    payload = slot_request(CLUSTER).to_payload()
    receive(path, TOPIC, payload)
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        store.decide(REQUEST_ID, True, None, RECEIVED)

    handled, _ = receive(path, TOPIC, payload)

    assert not handled
    assert stored(path) == [(REQUEST_ID, RequestState.ACCEPTED, None)]
    assert [parse_answer(payload).state for _, payload in queued(path)] == [
        AnswerState.DELIVERED,
        AnswerState.ACCEPTED,
    ]


def test_inbox_clear_closes_open_request(path: Path) -> None:
    receive(path, TOPIC, slot_request(CLUSTER).to_payload())

    first, _ = receive(path, TOPIC, b"")
    repeat, _ = receive(path, TOPIC, b"")

    assert first
    assert not repeat
    assert stored(path) == [(REQUEST_ID, RequestState.CLOSED, None)]
    assert queued(path)[-1] == (ANSWERS, b"")
    assert len(queued(path)) == 2


def test_inbox_clear_keeps_accepted_request(path: Path) -> None:
    receive(path, TOPIC, slot_request(CLUSTER).to_payload())
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        store.decide(REQUEST_ID, True, None, RECEIVED)

    handled, _ = receive(path, TOPIC, b"")

    assert handled
    assert stored(path) == [(REQUEST_ID, RequestState.ACCEPTED, None)]
    assert queued(path)[-1] == (ANSWERS, b"")


def test_inbox_clear_of_unknown_request_queues_nothing(path: Path) -> None:
    handled, _ = receive(path, TOPIC, b"")

    assert not handled
    assert queued(path) == []


@pytest.mark.parametrize(
    ("accepts", "resource", "reason"),
    [
        (
            False,
            "frezarka-1",
            "Właściciel nie przyjmuje zapytań o tę ofertę. / "
            "The owner does not take requests for this offer.",
        ),
        (
            True,
            "laser-2",
            "Ta oferta nie jest obecnie publikowana. / This offer is not published at the moment.",
        ),
    ],
)
def test_inbox_declines_offer_without_requests(
    tmp_path: Path, accepts: bool, resource: str, reason: str
) -> None:
    path = tmp_path / "audit.db"
    record_offer(path, CLUSTER, "frezarka-1", accepts_requests=accepts)

    receive(path, TOPIC, slot_request(CLUSTER, resource=resource).to_payload())

    answer = parse_answer(queued(path)[0][1])
    assert stored(path) == [(REQUEST_ID, RequestState.DECLINED, reason)]
    assert (answer.state, answer.reason) == (AnswerState.DECLINED, reason)


def test_inbox_declines_offer_taken_back(path: Path) -> None:
    with Outbox(path) as outbox:
        outbox.enqueue([OutgoingMessage(offer_topic(CLUSTER, MEMBER, "frezarka-1"), None)])

    receive(path, TOPIC, slot_request(CLUSTER).to_payload())

    assert stored(path)[0][1] is RequestState.DECLINED


def invalid_cases() -> list[tuple[str, bytes, str]]:
    good = slot_request(CLUSTER)
    other_member = json.loads(good.to_payload())
    other_member["member"] = "globex"
    return [
        (TOPIC, b"{not json", "request payload is not JSON"),
        (
            request_topic(CLUSTER, MEMBER, OTHER_ID),
            good.to_payload(),
            f"payload request_id '{REQUEST_ID}' differs from the topic's '{OTHER_ID}'",
        ),
        (
            request_topic(CLUSTER, "globex", REQUEST_ID),
            good.to_payload(),
            "the topic names cluster 'inbox-test' and member 'globex', this agent is 'acme' "
            "in 'inbox-test'",
        ),
        (
            TOPIC,
            json.dumps(other_member).encode(),
            "payload member 'globex' differs from the topic's 'acme'",
        ),
        (
            TOPIC,
            dataclasses.replace(good, cluster="other").to_payload(),
            "payload cluster 'other' differs from the topic's 'inbox-test'",
        ),
        (f"kooperant/v1/{CLUSTER}/{MEMBER}/requests/abc", good.to_payload(), "invalid request id"),
    ]


@pytest.mark.parametrize(("topic", "payload", "reason"), invalid_cases())
def test_inbox_drops_invalid_request(
    path: Path, caplog: pytest.LogCaptureFixture, topic: str, payload: bytes, reason: str
) -> None:
    caplog.set_level(logging.WARNING, logger="agent.request_inbox")
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        inbox = RequestInbox(store, lambda: RECEIVED)
        first = inbox.receive(topic, payload)
        inbox.receive(topic, payload)

    warnings = [record.getMessage() for record in caplog.records]
    assert not first
    assert inbox.invalid_requests == 1
    assert len(warnings) == 1
    assert warnings[0].startswith(f"Dropped an invalid request on {topic}: ")
    assert reason in warnings[0]
    assert stored(path) == []
    assert queued(path) == []


class RecordingSession:
    """Delivers the given messages and records, at each ack, which requests were stored."""

    def __init__(self, path: Path, messages: list[ReceivedMessage]) -> None:
        self._path = path
        self._messages = messages
        self.acks: list[tuple[int, list[str]]] = []

    async def messages(self) -> AsyncIterator[ReceivedMessage]:
        for message in self._messages:
            yield message

    def ack(self, message: ReceivedMessage) -> None:
        self.acks.append((message.mid, [request_id for request_id, _, _ in stored(self._path)]))


async def test_inbox_acks_after_storing(path: Path) -> None:
    message = ReceivedMessage(TOPIC, slot_request(CLUSTER).to_payload(), 1, True, 7)
    session = RecordingSession(path, [message])
    woken: list[bool] = []

    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        await RequestInbox(store, lambda: RECEIVED).serve(
            session,  # type: ignore[arg-type]
            lambda: woken.append(True),
        )

    assert session.acks == [(7, [REQUEST_ID])]
    assert woken == [True]


async def test_inbox_leaves_unstored_request_unacked(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    message = ReceivedMessage(TOPIC, slot_request(CLUSTER).to_payload(), 1, True, 7)
    session = RecordingSession(path, [message])

    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        # Dropping the table from another connection makes the insert fail.
        connection = sqlite3.connect(path)
        connection.execute("DROP TABLE requests")
        connection.close()
        await RequestInbox(store, lambda: RECEIVED).serve(
            session,  # type: ignore[arg-type]
            lambda: None,
        )

    errors = [record.getMessage() for record in caplog.records if record.levelname == "ERROR"]
    assert session.acks == []
    assert len(errors) == 1
    assert errors[0].startswith(f"Cannot store the request on {TOPIC}; it is received again")


NO_REQUESTS = (
    "Właściciel nie przyjmuje zapytań o tę ofertę. / The owner does not take requests for this "
    "offer."
)
NOT_OFFERED = "Ta oferta nie jest obecnie publikowana. / This offer is not published at the moment."


POLICY_RULES = {
    "takes requests": "share:\n  - resource: frezarka-1\n    fields: [state]\n",
    "requests off": "share:\n  - resource: frezarka-1\n    fields: [state]\n    requests: false\n",
    "no rule": "share:\n  - resource: laser-2\n    fields: [state]\n",
    "renamed": (
        "share:\n  - resource: frezarka-1\n    publish_as: frezarka-5os\n    fields: [state]\n"
    ),
    "published as": (
        "share:\n  - resource: cnc-7\n    publish_as: frezarka-1\n    fields: [state]\n"
        "    requests: false\n"
    ),
    "expired": ("share:\n  - resource: frezarka-1\n    fields: [state]\n    expires: 2026-03-01\n"),
}


def cycle_decisions(rules: str, decisions: dict[str, bool | None] | None = None) -> CycleDecisions:
    policy = parse_policy(POLICY_RULES[rules], Path("policy.yaml"))
    return CycleDecisions(decisions or {}, policy, {}, RECEIVED, ZoneInfo("Europe/Warsaw"))


@pytest.mark.parametrize(
    ("rules", "decisions", "state", "reason"),
    [
        ("takes requests", {"frezarka-1": False}, RequestState.DECLINED, NO_REQUESTS),
        ("takes requests", {"frezarka-1": None}, RequestState.DECLINED, NOT_OFFERED),
        ("requests off", {"frezarka-1": True}, RequestState.OPEN, None),
        ("takes requests", {"laser-2": False}, RequestState.OPEN, None),
        ("requests off", {}, RequestState.DECLINED, NO_REQUESTS),
        ("no rule", {}, RequestState.DECLINED, NOT_OFFERED),
        ("renamed", {}, RequestState.DECLINED, NOT_OFFERED),
        ("published as", {}, RequestState.DECLINED, NO_REQUESTS),
        ("expired", {}, RequestState.DECLINED, NOT_OFFERED),
    ],
    ids=[
        "cycle switched requests off",
        "cycle withdrew offer",
        "cycle takes requests",
        "cycle decided other offer",
        "policy switched requests off",
        "policy has no rule",
        "policy renamed offer",
        "policy publishes other id",
        "policy rule expired",
    ],
)
def test_inbox_follows_current_decision(
    path: Path,
    rules: str,
    decisions: dict[str, bool | None],
    state: RequestState,
    reason: str | None,
) -> None:
    # The latest offer sent (in the fixture) takes requests.
    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        inbox = RequestInbox(store, lambda: RECEIVED)
        inbox.offer_decision = cycle_decisions(rules, decisions)
        inbox.receive(TOPIC, slot_request(CLUSTER).to_payload())

    assert stored(path) == [(REQUEST_ID, state, reason)]


def test_inbox_current_policy_keeps_withdrawn_offer_declined(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    record_offer(path, CLUSTER, "frezarka-1", accepts_requests=False)

    with Outbox(path) as outbox, RequestStore(outbox, CLUSTER, MEMBER) as store:
        inbox = RequestInbox(store, lambda: RECEIVED)
        inbox.offer_decision = cycle_decisions("takes requests")
        inbox.receive(TOPIC, slot_request(CLUSTER).to_payload())

    assert stored(path) == [(REQUEST_ID, RequestState.DECLINED, NO_REQUESTS)]


def test_offer_decisions_maps_public_ids() -> None:
    def offer(resource: str, accepts: bool) -> Offer:
        return Offer(
            CLUSTER, MEMBER, resource, ResourceKind.MACHINE, RECEIVED, accepts_requests=accepts
        )

    decisions = offer_decisions(
        [offer("frezarka-1", True), offer("laser-2", False)], ["frezarka-1", "tokarka-3"]
    )

    assert decisions == {"frezarka-1": True, "laser-2": False, "tokarka-3": None}
