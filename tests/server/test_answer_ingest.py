"""Answers of a fake agent through Mosquitto: state changes, duplicates and rejections.

The fake agent is a paho-mqtt client (through aiomqtt) that publishes ``kooperant.answer/1.0``
messages with an envelope, retained, as the owner's agent does. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from kooperant.protocol.answer import Answer, AnswerState
from kooperant.protocol.envelope import Envelope
from kooperant.protocol.request import CapacityRequest
from kooperant.protocol.topics import answer_topic
from server.mqtt_url import parse_broker_url
from server.status import ServerStatus
from server.storage import Storage
from tests.server.helpers import hours, machine_offer
from tests.server.ingest_helpers import publisher, rejected, running_ingest, true, wait_until
from tests.server.request_routing_helpers import NOW, create_request, requests_api

pytestmark = pytest.mark.mosquitto

Publish = Callable[[str, bytes], Awaitable[None]]


@pytest.fixture
def request_of_beta(storage: Storage, cluster_id: str) -> CapacityRequest:
    """Beta's stored request for acme's machine, in a cluster of this test's own."""
    storage.store_offer(machine_offer(cluster=cluster_id, accepts_requests=True), NOW)
    return create_request(storage, cluster_id)


def answer_to(request: CapacityRequest, state: AnswerState, seq: int, **changes: Any) -> Answer:
    """Return acme's answer to ``request`` with message id ``answer-{seq}``."""
    answer = Answer(
        request_id=request.request_id,
        cluster=request.cluster,
        member=request.member,
        resource=request.resource,
        state=state,
        decided_at=NOW + hours(1),
        reason="Maszyna zajęta" if state == AnswerState.DECLINED else None,
        envelope=Envelope(f"answer-{seq}", seq),
    )
    return replace(answer, **changes)


def topic_for(request: CapacityRequest) -> str:
    return answer_topic(request.cluster, request.member, request.request_id)


async def request_state(api: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    response = await api.get(
        f"/api/v1/requests/{request_id}", headers={"Authorization": "Bearer token-beta"}
    )
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


@asynccontextmanager
async def fake_agent(
    storage: Storage, cluster: str, mosquitto_url: str
) -> AsyncIterator[tuple[ServerStatus, httpx.AsyncClient, Publish]]:
    """Ingest of ``cluster`` and a client that publishes the owner's answers."""
    broker = parse_broker_url(mosquitto_url)
    async with (
        running_ingest(storage, broker, cluster) as (status, ingest_api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        yield status, ingest_api, publish


async def test_answers_move_request_states(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
) -> None:
    request = request_of_beta
    topic = topic_for(request)

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, _, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        await publish(topic, answer_to(request, AnswerState.DELIVERED, 1).to_payload())
        await wait_until(lambda: true(status.accepted_answers == 1), "delivered answer stored")
        delivered = await request_state(api, request.request_id)

        await publish(topic, answer_to(request, AnswerState.DECLINED, 2).to_payload())
        await wait_until(lambda: true(status.accepted_answers == 2), "declined answer stored")
        declined = await request_state(api, request.request_id)

    assert delivered["state"] == "delivered"
    assert declined["state"] == "declined"
    assert declined["reason"] == "Maszyna zajęta"
    assert [entry["state"] for entry in declined["history"]] == ["sent", "delivered", "declined"]
    assert status.rejected_messages == 0


async def test_accepted_answer_skips_delivered(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
) -> None:
    request = request_of_beta

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, _, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        payload = answer_to(request, AnswerState.ACCEPTED, 5).to_payload()
        await publish(topic_for(request), payload)
        await wait_until(lambda: true(status.accepted_answers == 1), "accepted answer stored")
        accepted = await request_state(api, request.request_id)

    assert accepted["state"] == "accepted"
    assert accepted["reason"] is None


async def test_duplicate_answer_id_changes_nothing(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
) -> None:
    request = request_of_beta
    topic = topic_for(request)
    delivered = answer_to(request, AnswerState.DELIVERED, 1)
    # The same message id again, now carrying a decision and a higher seq.
    repeated = answer_to(request, AnswerState.ACCEPTED, 2, envelope=Envelope("answer-1", 2))

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, _, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        await publish(topic, delivered.to_payload())
        await wait_until(lambda: true(status.accepted_answers == 1), "first answer stored")
        await publish(topic, repeated.to_payload())
        await wait_until(lambda: true(status.duplicate_messages == 1), "repeat counted")
        stored = await request_state(api, request.request_id)

    assert stored["state"] == "delivered"
    assert [entry["state"] for entry in stored["history"]] == ["sent", "delivered"]
    assert status.accepted_answers == 1


async def test_late_answer_after_expiry_ignored(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
) -> None:
    request = request_of_beta
    # Expired as the sweep does it, with a clock one hour past the request's expiry.
    assert storage.expire_requests(request.expires_at + hours(1)) == [request.request_id]

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, ingest_api, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        payload = answer_to(request, AnswerState.ACCEPTED, 9).to_payload()
        await publish(topic_for(request), payload)
        await wait_until(lambda: true(status.accepted_answers == 1), "late answer handled")
        stored = await request_state(api, request.request_id)
        rejections = await rejected(ingest_api)

    assert stored["state"] == "expired"
    assert [entry["state"] for entry in stored["history"]] == ["sent", "expired"]
    assert rejections == []


async def test_empty_answer_payload_ignored(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    request = request_of_beta
    caplog.set_level(logging.DEBUG, logger="server.message_handling")

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, ingest_api, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        # Mosquitto forwards an empty retained payload to the subscribers that are connected.
        await publish(topic_for(request), b"")
        await publish(topic_for(request), answer_to(request, AnswerState.DELIVERED, 1).to_payload())
        await wait_until(lambda: true(status.accepted_answers == 1), "answer after empty one")
        stored = await request_state(api, request.request_id)
        rejections = await rejected(ingest_api)

    ignored = [
        record
        for record in caplog.records
        if record.getMessage().startswith(f"Ignored empty payload on {topic_for(request)}")
    ]
    # The publisher clears the topic once more on exit, which ingest may log too.
    assert ignored
    assert stored["state"] == "delivered"
    assert rejections == []
    assert status.rejected_messages == 0


def wrong_request_id(request: CapacityRequest) -> tuple[str, bytes, list[str]]:
    other_id = "0f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
    answer = answer_to(request, AnswerState.ACCEPTED, 1, request_id=other_id)
    reason = [f"/{other_id}'", f"/{request.request_id}'", "but the topic is for"]
    return topic_for(request), answer.to_payload(), reason


def wrong_resource(request: CapacityRequest) -> tuple[str, bytes, list[str]]:
    answer = answer_to(request, AnswerState.ACCEPTED, 1, resource="cnc-other")
    reason = [
        f"answer to request {request.request_id}",
        f"'{request.cluster}/acme/cnc-other'",
        f"'{request.cluster}/acme/cnc-5ax-01'",
    ]
    return topic_for(request), answer.to_payload(), reason


def unknown_request(request: CapacityRequest) -> tuple[str, bytes, list[str]]:
    unknown_id = "1a2b3c4d-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
    answer = answer_to(request, AnswerState.ACCEPTED, 1, request_id=unknown_id)
    topic = answer_topic(request.cluster, request.member, unknown_id)
    return topic, answer.to_payload(), [f"unknown request {unknown_id}"]


def bad_json(request: CapacityRequest) -> tuple[str, bytes, list[str]]:
    return topic_for(request), b'{"schema": "kooperant.answer/1.0",', ["answer payload is not JSON"]


def other_members_answer(request: CapacityRequest) -> tuple[str, bytes, list[str]]:
    # Beta answers on its own topic, as if it owned the offer.
    answer = answer_to(request, AnswerState.ACCEPTED, 1, member="beta")
    topic = answer_topic(request.cluster, "beta", request.request_id)
    return topic, answer.to_payload(), [f"'{request.cluster}/beta/cnc-5ax-01'"]


@pytest.mark.parametrize(
    "make_message",
    [wrong_request_id, wrong_resource, unknown_request, bad_json, other_members_answer],
)
async def test_bad_answer_rejected_with_reason(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
    make_message: Callable[[CapacityRequest], tuple[str, bytes, list[str]]],
) -> None:
    request = request_of_beta
    topic, payload, reason_parts = make_message(request)

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, ingest_api, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        await publish(topic, payload)
        await wait_until(lambda: true(status.rejected_messages == 1), "answer rejected")
        rejections = await rejected(ingest_api)
        stored = await request_state(api, request.request_id)

    assert len(rejections) == 1
    assert rejections[0]["topic"] == topic
    for part in reason_parts:
        assert part in rejections[0]["reason"]
    assert stored["state"] == "sent"
    assert status.accepted_answers == 0


async def test_rejected_answer_id_not_recorded(
    storage: Storage,
    request_of_beta: CapacityRequest,
    mosquitto_url: str,
    tmp_path: Path,
) -> None:
    request = request_of_beta
    topic, wrong, _ = wrong_resource(request)
    corrected = answer_to(request, AnswerState.ACCEPTED, 2, envelope=Envelope("answer-1", 2))

    async with (
        fake_agent(storage, request.cluster, mosquitto_url) as (status, _, publish),
        requests_api(storage, tmp_path, request.cluster) as api,
    ):
        await publish(topic, wrong)
        await wait_until(lambda: true(status.rejected_messages == 1), "wrong answer rejected")
        # The corrected answer reuses the rejected one's message id.
        await publish(topic, corrected.to_payload())
        await wait_until(lambda: true(status.accepted_answers == 1), "corrected answer stored")
        stored = await request_state(api, request.request_id)

    assert json.loads(wrong)["message_id"] == "answer-1"
    assert stored["state"] == "accepted"
    assert status.duplicate_messages == 0
