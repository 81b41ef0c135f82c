"""Withdrawals and cleared offers through Mosquitto, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
import time

import httpx
import pytest

from kooperant.protocol import offer_topic, withdrawal_topic
from server.mqtt_url import parse_broker_url
from server.storage import Storage
from tests.server.helpers import T0, hours, machine_offer, withdrawal
from tests.server.ingest_helpers import (
    publisher,
    rejected,
    resources,
    running_ingest,
    true,
    wait_until,
)

logger = logging.getLogger(__name__)

pytestmark = pytest.mark.mosquitto

# The acceptance bound for a withdrawn offer to leave the API.
WITHDRAWAL_BOUND_SECONDS = 5.0


async def resource_ids(api: httpx.AsyncClient) -> list[str]:
    return [item["resource"] for item in await resources(api)]


async def test_withdrawal_removes_offer_from_api(
    storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    offer = machine_offer(cluster=cluster_id)

    async with (
        running_ingest(storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        await publish(offer_topic(cluster_id, "acme", "cnc-5ax-01"), offer.to_payload())

        async def offered() -> bool:
            return await resource_ids(api) == ["cnc-5ax-01"]

        await wait_until(offered, "offer stored")
        started = time.monotonic()
        await publish(
            withdrawal_topic(cluster_id, "acme", "cnc-5ax-01"),
            withdrawal(cluster=cluster_id).to_payload(),
        )

        async def withdrawn() -> bool:
            return await resource_ids(api) == []

        await wait_until(withdrawn, "offer gone after the withdrawal")
        elapsed = time.monotonic() - started

    logger.info("Withdrawal to absence from GET /api/v1/resources: %.3f s", elapsed)
    assert elapsed < WITHDRAWAL_BOUND_SECONDS
    assert status.accepted_withdrawals == 1
    assert status.stale_withdrawals == 0
    assert storage.count_history(cluster_id, "acme", "cnc-5ax-01") == 1


async def test_withdrawal_deletes_history_when_asked(
    storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)

    async with (
        running_ingest(storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        for resource in ("forget-me", "keep-history"):
            offer = machine_offer(cluster=cluster_id, resource=resource)
            await publish(offer_topic(cluster_id, "acme", resource), offer.to_payload())

        async def both_offered() -> bool:
            return await resource_ids(api) == ["forget-me", "keep-history"]

        await wait_until(both_offered, "offers stored")
        for resource, delete_history in (("forget-me", True), ("keep-history", False)):
            message = withdrawal(cluster_id, resource=resource, delete_history=delete_history)
            await publish(withdrawal_topic(cluster_id, "acme", resource), message.to_payload())

        async def both_withdrawn() -> bool:
            return await resource_ids(api) == []

        await wait_until(both_withdrawn, "offers withdrawn")

    assert storage.count_history(cluster_id, "acme", "forget-me") == 0
    assert storage.count_history(cluster_id, "acme", "keep-history") == 1


async def test_stale_withdrawal_is_ignored(
    storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    offer = machine_offer(cluster=cluster_id, generated_at=T0 + hours(2))

    async with (
        running_ingest(storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        await publish(offer_topic(cluster_id, "acme", "cnc-5ax-01"), offer.to_payload())

        async def offered() -> bool:
            return await resource_ids(api) == ["cnc-5ax-01"]

        await wait_until(offered, "offer stored")
        stale = withdrawal(cluster_id, withdrawn_at=T0 + hours(1), delete_history=True)
        await publish(withdrawal_topic(cluster_id, "acme", "cnc-5ax-01"), stale.to_payload())
        await wait_until(lambda: true(status.accepted_withdrawals == 1), "withdrawal handled")
        items = await resource_ids(api)

    assert items == ["cnc-5ax-01"]
    assert status.stale_withdrawals == 1
    assert storage.count_history(cluster_id, "acme", "cnc-5ax-01") == 1


async def test_empty_offer_payload_removes_offer(
    storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    topic = offer_topic(cluster_id, "acme", "cnc-5ax-01")

    async with (
        running_ingest(storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        await publish(topic, machine_offer(cluster=cluster_id).to_payload())

        async def offered() -> bool:
            return await resource_ids(api) == ["cnc-5ax-01"]

        await wait_until(offered, "offer stored")
        await publish(topic, b"")

        async def cleared() -> bool:
            return await resource_ids(api) == []

        await wait_until(cleared, "offer gone after the empty payload")
        rejected_items = await rejected(api)

    assert status.cleared_offers == 1
    assert rejected_items == []
    assert storage.count_history(cluster_id, "acme", "cnc-5ax-01") == 1


async def test_retained_withdrawal_applies_on_connect(
    storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    # The aggregator was offline while the member withdrew: it still stores the offer, and the
    # broker keeps the retained withdrawal.
    storage.store_offer(machine_offer(cluster=cluster_id), T0)
    broker = parse_broker_url(mosquitto_url)

    async with publisher(broker) as publish:
        await publish(
            withdrawal_topic(cluster_id, "acme", "cnc-5ax-01"),
            withdrawal(cluster=cluster_id).to_payload(),
        )
        async with running_ingest(storage, broker, cluster_id) as (status, api):

            async def withdrawn() -> bool:
                return await resource_ids(api) == []

            await wait_until(withdrawn, "retained withdrawal applied")

    assert status.accepted_withdrawals == 1


def _withdrawal_json(cluster: str, **changes: object) -> bytes:
    data = withdrawal(cluster=cluster).to_json()
    data.update(changes)
    return json.dumps(data).encode()


async def test_invalid_withdrawals_are_rejected(
    storage: Storage, mosquitto_url: str, cluster_id: str
) -> None:
    broker = parse_broker_url(mosquitto_url)
    cases = {
        "not-json": (b"{not json", "withdrawal payload is not UTF-8 JSON"),
        "bad-reason": (
            _withdrawal_json(cluster_id, resource="bad-reason", reason="bored"),
            "invalid withdrawal at reason: 'bored' is not one of",
        ),
        "no-flag": (
            json.dumps(
                {
                    key: value
                    for key, value in json.loads(
                        _withdrawal_json(cluster_id, resource="no-flag")
                    ).items()
                    if key != "delete_history"
                }
            ).encode(),
            "'delete_history' is a required property",
        ),
        "mismatch": (
            _withdrawal_json(cluster_id, resource="cnc-5ax-01"),
            f"payload is for cluster/member/resource '{cluster_id}/acme/cnc-5ax-01' "
            f"but the topic is for '{cluster_id}/acme/mismatch'",
        ),
    }

    async with (
        running_ingest(storage, broker, cluster_id) as (status, api),
        publisher(broker) as publish,
    ):
        await wait_until(lambda: true(status.broker_connected), "ingest connected")
        await publish(withdrawal_topic(cluster_id, "acme", "empty"), b"")
        for resource, (payload, _) in cases.items():
            await publish(withdrawal_topic(cluster_id, "acme", resource), payload)
        marker = machine_offer(cluster=cluster_id, resource="marker")
        await publish(offer_topic(cluster_id, "acme", "marker"), marker.to_payload())

        async def marker_arrived() -> bool:
            return await resource_ids(api) == ["marker"]

        await wait_until(marker_arrived, "marker stored after the bad withdrawals")
        reasons = {item["topic"]: item["reason"] for item in await rejected(api)}

    for resource, (_, reason) in cases.items():
        topic = withdrawal_topic(cluster_id, "acme", resource)
        assert topic in reasons, f"no rejected message stored for {resource}"
        assert reason in reasons[topic]
    assert withdrawal_topic(cluster_id, "acme", "empty") not in reasons
    assert status.rejected_messages == len(cases)
    assert status.accepted_withdrawals == 0
