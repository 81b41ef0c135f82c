"""Capacity requests end to end: dashboard API → aggregator → Mosquitto → agent → answer.

Mosquitto on 127.0.0.1:1883, a PostgreSQL database of its own and an aiosmtpd sink on loopback.
The owner's agent reads a Windows-1250 production plan and shares two machines: one with an
audience of one member, one with requests switched off. The requester sends requests while the
owner's agent is offline, and the agent receives them when it starts. Expiry is driven through
storage with a time three days ahead instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import pytest
from typer.testing import CliRunner

from agent.cli import app as agent_app
from agent.config import load_config
from agent.runner import Agent
from kooperant.net import free_tcp_port
from server.broker import EmbeddedBroker
from server.mail_settings import SmtpSettings
from server.service import ServerSettings, open_storage, run_server
from server.storage import Storage
from server.storage.profiles import MemberProfile
from server.tokens import add_token
from tests.support.smtp_sink import ReceivedMail, SmtpSink

OWNER = "acme-metal"
REQUESTER = "beta-tools"
OUTSIDER = "gamma-works"
OWNER_EMAIL = "biuro@acme-metal.example"
REQUESTER_EMAIL = "anna.nowak@beta-tools.example"
SENDER = "kooperant@klaster.example"
SLOT = timedelta(hours=2)

AGENT_YAML = """\
member: {owner}
cluster: {cluster}
timezone: Europe/Warsaw
horizon_days: 7
publish_interval_seconds: 60
broker:
  url: {broker_url}
  protocol: "{protocol}"
calendar:
  shifts:
    - {{days: [mon, tue, wed, thu, fri, sat, sun], start: "06:00", end: "22:00"}}
policy: policy.yaml
resources:
  mill-a1: {{name: Hermle C 42 U, kind: machine, capabilities: [5-axis-milling]}}
  lathe-b2: {{name: Mazak QTU 250, kind: machine, capabilities: [cnc-turning]}}
adapters:
  - type: schedule_csv
    name: plan
    path: plan.csv
    stable_seconds: 0
    poll_interval_seconds: 0.5
    machines: {{FREZ-A1: mill-a1, TOKARKA-B2: lathe-b2}}
"""

POLICY_YAML = f"""\
share:
  - resource: mill-a1
    fields: [name, capabilities, free_hours, free_intervals, horizon]
    audience: {{members: [{REQUESTER}]}}
  - resource: lathe-b2
    fields: [name, free_hours, free_intervals]
    requests: false
"""

PLAN_CSV = "Zlecenie;Maszyna;Początek;Koniec;Ilość\r\n"


def write_owner_files(folder: Path, cluster: str, broker_url: str, protocol: str) -> Path:
    (folder / "plan.csv").write_bytes(PLAN_CSV.encode("cp1250"))
    (folder / "policy.yaml").write_text(POLICY_YAML)
    config_path = folder / "agent.yaml"
    config_path.write_text(
        AGENT_YAML.format(owner=OWNER, cluster=cluster, broker_url=broker_url, protocol=protocol)
    )
    return config_path


class Cluster:
    """The aggregator's API as each member sees it with its own token."""

    def __init__(self, port: int, cluster: str, tokens: dict[str, str]) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.cluster = cluster
        self.tokens = tokens

    def client(self, member: str) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[member]}"}
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, timeout=10)

    async def offer(self, member: str, resource: str) -> dict[str, Any] | None:
        async with self.client(member) as client:
            response = await client.get(f"/api/v1/resources/{self.cluster}/{OWNER}/{resource}")
        return response.json() if response.status_code == 200 else None

    async def send(self, member: str, body: dict[str, Any]) -> httpx.Response:
        async with self.client(member) as client:
            return await client.post("/api/v1/requests", json=body)

    async def request(self, member: str, request_id: str) -> dict[str, Any]:
        async with self.client(member) as client:
            response = await client.get(f"/api/v1/requests/{request_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())


async def wait_until(
    what: str, probe: Callable[[], Any], check: Callable[[Any], bool], seconds: float = 20.0
) -> Any:
    """Call the coroutine function ``probe`` until ``check`` takes its result; return it."""
    deadline = time.monotonic() + seconds
    result = None
    while time.monotonic() < deadline:
        result = await probe()
        if check(result):
            return result
        await asyncio.sleep(0.3)
    raise AssertionError(f"{what} within {seconds} s; last value: {result!r}")


def slot_body(cluster: str, resource: str, start: datetime, note: str) -> dict[str, Any]:
    return {
        "cluster": cluster,
        "member": OWNER,
        "resource": resource,
        "slot": {"start": start.isoformat(), "end": (start + SLOT).isoformat()},
        "message": note,
        "contact": {"name": "Anna Nowak", "email": REQUESTER_EMAIL, "phone": "+48 58 123 45 67"},
        "expires_in_hours": 48,
    }


def free_slots(offer: dict[str, Any], count: int) -> list[datetime]:
    """Return the starts of ``count`` separate two-hour slots inside the offer's free time."""
    starts: list[datetime] = []
    for interval in offer["free_intervals"]:
        start = datetime.fromisoformat(interval["start"]) + timedelta(hours=1)
        end = datetime.fromisoformat(interval["end"])
        while start + SLOT <= end and len(starts) < count:
            starts.append(start)
            start += SLOT
    assert len(starts) == count, offer["free_intervals"]
    return starts


def inside_free_time(offer: dict[str, Any], start: datetime) -> bool:
    return any(
        datetime.fromisoformat(interval["start"]) <= start
        and start + SLOT <= datetime.fromisoformat(interval["end"])
        for interval in offer["free_intervals"]
    )


async def run_owner_cli(config_path: Path, *arguments: str) -> str:
    result = await asyncio.to_thread(
        CliRunner().invoke, agent_app, [*arguments, "--config", str(config_path)]
    )
    assert result.exit_code == 0, result.output
    return result.output


@contextlib.asynccontextmanager
async def running_agent(config_path: Path) -> AsyncIterator[Agent]:
    stop = asyncio.Event()
    owner = Agent(load_config(config_path, {}))
    task = asyncio.create_task(owner.run(stop))
    try:
        yield owner
    finally:
        stop.set()
        async with asyncio.timeout(20):
            await task


async def retained_requests(broker_url: str, cluster: str) -> list[str]:
    """Return the request topics the broker retains for the owner, read for one second."""
    host, port = broker_url.removeprefix("mqtt://").split(":")
    topics: list[str] = []
    async with aiomqtt.Client(host, int(port), identifier=f"{cluster}-check") as client:
        request_filter = f"kooperant/v1/{cluster}/{OWNER}/requests/+"
        await client.subscribe(request_filter, qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1.0):
                async for message in client.messages:
                    # amqtt 0.12.1 also sends a connecting client the retained messages of
                    # every other client's subscriptions, so the topic is checked here.
                    if message.payload and message.topic.matches(request_filter):
                        topics.append(str(message.topic))
    return topics


def mails_to(sink: SmtpSink, address: str) -> list[ReceivedMail]:
    return [mail for mail in sink.mails if address in mail.recipients]


@pytest.mark.mosquitto
@pytest.mark.postgres
async def test_request_path_on_mosquitto_and_postgres(
    tmp_path: Path, mosquitto_url: str, postgres_url: str, cluster_id: str, free_port: int
) -> None:
    await run_request_path(tmp_path, cluster_id, free_port, mosquitto_url, postgres_url, "5")


async def test_request_path_on_embedded_broker_and_sqlite(
    tmp_path: Path, cluster_id: str, free_port: int
) -> None:
    database = f"sqlite:///{tmp_path / 'kooperant.db'}"
    async with EmbeddedBroker(port=0) as broker:
        # The embedded amqtt broker speaks MQTT 3.1.1 only.
        await run_request_path(tmp_path, cluster_id, free_port, broker.url, database, "3.1.1")


async def run_request_path(
    folder: Path, cluster_id: str, port: int, broker_url: str, database: str, protocol: str
) -> None:
    config_path = write_owner_files(folder, cluster_id, broker_url, protocol)
    tokens_file = folder / "tokens.yaml"
    tokens = {
        member: add_token(tokens_file, cluster_id, member)
        for member in (OWNER, REQUESTER, OUTSIDER)
    }
    cluster = Cluster(port, cluster_id, tokens)
    with SmtpSink(free_tcp_port()) as sink:
        settings = ServerSettings(
            database=database,
            broker_url=broker_url,
            mqtt_protocol="5" if protocol == "5" else "3.1.1",
            cluster=cluster_id,
            http_port=port,
            tokens_file=tokens_file,
            smtp=SmtpSettings(url=f"smtp://127.0.0.1:{sink.port}", sender=SENDER),
            public_url=cluster.base_url,
        )
        stop = asyncio.Event()
        ready = asyncio.Event()
        server = asyncio.create_task(run_server(settings, stop, ready))
        try:
            async with asyncio.timeout(20):
                await ready.wait()
            storage = open_storage(settings)
            storage.save_profile(
                MemberProfile(cluster_id, OWNER, "ACME Metal", contact_email=OWNER_EMAIL),
                datetime.now(UTC),
            )
            await check_request_path(cluster, config_path, storage, sink, broker_url)
        finally:
            stop.set()
            async with asyncio.timeout(20):
                await server


async def check_request_path(
    cluster: Cluster, config_path: Path, storage: Storage, sink: SmtpSink, broker_url: str
) -> None:
    cluster_id = cluster.cluster

    # The owner's agent publishes its offers once, then goes offline.
    async with running_agent(config_path):
        mill = await wait_until(
            "the mill offer with accepts_requests",
            lambda: cluster.offer(REQUESTER, "mill-a1"),
            lambda offer: offer is not None and offer["accepts_requests"] is True,
        )
        lathe = await wait_until(
            "the lathe offer",
            lambda: cluster.offer(REQUESTER, "lathe-b2"),
            lambda offer: offer is not None,
        )
    accepted_start, declined_start, expired_start = free_slots(mill, 3)

    # Requests made while the owner's agent is offline.
    sent = await cluster.send(
        REQUESTER, slot_body(cluster_id, "mill-a1", accepted_start, "40 wałków")
    )
    declined = await cluster.send(
        REQUESTER, slot_body(cluster_id, "mill-a1", declined_start, "Tuleje")
    )
    expiring = await cluster.send(
        REQUESTER, slot_body(cluster_id, "mill-a1", expired_start, "Pilne")
    )
    outside = await cluster.send(OUTSIDER, slot_body(cluster_id, "mill-a1", accepted_start, "Hej"))
    lathe_start = datetime.fromisoformat(lathe["free_intervals"][0]["start"])
    closed = await cluster.send(
        REQUESTER, slot_body(cluster_id, "lathe-b2", lathe_start, "Toczenie")
    )

    assert sent.status_code == 201, sent.text
    assert declined.status_code == 201, declined.text
    assert expiring.status_code == 201, expiring.text
    assert outside.status_code == 404, outside.text
    assert outside.json()["error"]["code"] == "request_offer_not_found"
    assert closed.status_code == 409, closed.text
    assert closed.json()["error"]["code"] == "request_offer_closed"
    accepted_id = sent.json()["request_id"]
    declined_id = declined.json()["request_id"]
    expired_id = expiring.json()["request_id"]
    assert sent.json()["state"] == "sent"
    await wait_until(
        "the three requests retained for the offline owner",
        lambda: retained_requests(broker_url, cluster_id),
        lambda topics: len(topics) == 3,
    )
    owner_mails = await asyncio.to_thread(wait_for_mails, sink, OWNER_EMAIL, 3)
    assert all(
        accepted_id in mail.text or declined_id in mail.text or expired_id in mail.text
        for mail in owner_mails
    )

    async with running_agent(config_path) as owner:
        # The agent receives the requests it missed and answers "delivered".
        for request_id in (accepted_id, declined_id, expired_id):
            await wait_until(
                f"request {request_id} delivered",
                lambda request_id=request_id: cluster.request(REQUESTER, request_id),
                lambda request: request["state"] == "delivered",
            )

        await run_owner_cli(config_path, "accept", accepted_id[:8])
        await run_owner_cli(config_path, "decline", declined_id, "--reason", "Maszyna zajęta.")
        accepted = await wait_until(
            "the accepted answer",
            lambda: cluster.request(REQUESTER, accepted_id),
            lambda request: request["state"] == "accepted",
        )
        declined_record = await wait_until(
            "the declined answer",
            lambda: cluster.request(REQUESTER, declined_id),
            lambda request: request["state"] == "declined",
        )
        # The accepted slot leaves the offer, and a request for it is rejected at once.
        held_mill = await wait_until(
            "the mill offer without the accepted slot",
            lambda: cluster.offer(REQUESTER, "mill-a1"),
            lambda offer: not inside_free_time(offer, accepted_start),
        )
        taken = await cluster.send(
            REQUESTER, slot_body(cluster_id, "mill-a1", accepted_start, "Jeszcze raz")
        )

        # Expiry: the sweep runs with a time three days ahead instead of waiting.
        expired_ids = storage.expire_requests(datetime.now(UTC) + timedelta(days=3))
        expired = await cluster.request(REQUESTER, expired_id)
        await wait_until(
            "every final request cleared from the broker",
            lambda: retained_requests(broker_url, cluster_id),
            lambda topics: topics == [],
        )
        invalid_requests = owner.status().requests
        owner_view = await wait_until(
            "the owner's agent closing the expired request",
            lambda: owner_requests(config_path),
            lambda rows: rows[expired_id]["state"] == "closed",
        )

    requester_mails = await asyncio.to_thread(wait_for_mails, sink, REQUESTER_EMAIL, 3)
    async with cluster.client(OWNER) as client:
        rejected = (await client.get("/api/v1/rejected-messages")).json()["items"]
    assert accepted["history"][-1]["state"] == "accepted"
    assert [entry["state"] for entry in accepted["history"]] == ["sent", "delivered", "accepted"]
    assert declined_record["reason"] == "Maszyna zajęta."
    assert inside_free_time(mill, accepted_start)
    assert not inside_free_time(held_mill, accepted_start)
    assert inside_free_time(held_mill, declined_start)
    assert taken.status_code == 422, taken.text
    assert taken.json()["error"]["code"] == "request_slot_not_free"
    assert expired_ids == [expired_id]
    assert expired["state"] == "expired"
    assert rejected == []
    assert invalid_requests is not None
    assert invalid_requests.invalid == 0
    assert owner_view[accepted_id]["state"] == "held"
    assert owner_view[declined_id]["state"] == "declined"
    assert any("Maszyna zajęta." in mail.text for mail in requester_mails)
    assert any(accepted_id in mail.text for mail in requester_mails)
    assert any(expired_id in mail.text for mail in mails_to(sink, OWNER_EMAIL))


def wait_for_mails(sink: SmtpSink, address: str, count: int) -> list[ReceivedMail]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        mails = mails_to(sink, address)
        if len(mails) >= count:
            return mails
        time.sleep(0.2)
    raise AssertionError(f"{address} got {len(mails_to(sink, address))} e-mails, expected {count}")


async def owner_requests(config_path: Path) -> dict[str, dict[str, Any]]:
    output = await run_owner_cli(config_path, "requests", "--all", "--json")
    return {row["request_id"]: row for row in json.loads(output)}
