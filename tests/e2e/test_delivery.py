"""Delivery under failure: agents, broker, aggregator and database as separate processes.

Each scenario runs Mosquitto of its own with persistence, the aggregator as ``kooperant server
run`` (or ``server ingest`` workers) and two or three agents as processes. The agents use the
``ticking`` adapter of ``tests.support.ticking_agent``: machines whose state changes every
50 ms, so each agent publishes a changed offer of every machine twice a second (its debounce).
Then one part is killed or stopped and started again. At the end the machines are frozen, the
test waits until every agent's outbox is empty and the aggregator has stored every offer the
agents' audit logs record as acknowledged, and counts:

- sent: message ids of the offers in the agents' audit logs;
- stored: those ids found in ``offer_history``; duplicated: history rows beyond one per id;
- lost: sent ids never stored; rejected: ``rejected_messages`` rows on the cluster's topics.

Every scenario records its counts in the ``delivery counts`` table printed after the run.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiomqtt
import httpx
import pytest

from kooperant.net import free_tcp_port
from kooperant.protocol import (
    Envelope,
    MachineState,
    Offer,
    ResourceKind,
    new_message_id,
    next_sequence,
    offer_topic,
)
from tests.support.delivery_report import (
    DeliveryCounts,
    DeliveryReport,
    count_delivery,
    pending_offer_ids,
    rejected_count,
    sent_offer_ids,
    stored_offer_ids,
)
from tests.support.mosquitto import OwnMosquitto
from tests.support.postgres import OwnPostgres, missing_service
from tests.support.processes import (
    KooperantProcess,
    agent_process,
    ingest_process,
    server_process,
)

pytestmark = pytest.mark.timeout(300)

MACHINES_PER_AGENT = 4
# How long the agents publish before and after a failure, in seconds.
PUBLISH_SECONDS = 5.0
BROKER_DOWN_SECONDS = 60.0
DELIVERY_TIMEOUT_SECONDS = 90.0
SESSION_EXPIRY_SECONDS = 3600
MOSQUITTO_QUEUE = "max_queued_messages 100000"

AGENT_YAML = """\
member: {member}
cluster: {cluster}
publish_interval_seconds: 3600
broker:
  url: {broker_url}
  client_id: {cluster}-{member}
  # Short retries, so that the scenarios measure loss, not the default backoff of up to 60 s.
  reconnect_max_seconds: 5
status: {{enabled: false}}
policy: policy.yaml
audit_log: audit.db
adapters:
  - type: ticking
    name: hall
    resources: [{resources}]
    interval_seconds: 0.05
    freeze_file: freeze
"""
POLICY_YAML = "share:\n  - kind: machine\n    fields: [name, state]\n"


@dataclass
class AgentSite:
    """One member's agent: its folder, config and process."""

    member: str
    folder: Path
    process: KooperantProcess

    @property
    def audit_log(self) -> Path:
        return self.folder / "audit.db"

    def freeze(self) -> None:
        (self.folder / "freeze").touch()

    def thaw(self) -> None:
        (self.folder / "freeze").unlink(missing_ok=True)


@dataclass
class Cluster:
    """The parts of one scenario, started by the fixtures below and stopped at the end."""

    cluster: str
    folder: Path
    broker: OwnMosquitto
    database_url: str
    agents: list[AgentSite] = field(default_factory=list)
    processes: list[KooperantProcess] = field(default_factory=list)

    def add_agent(self, member: str) -> AgentSite:
        folder = self.folder / member
        folder.mkdir()
        resources = ", ".join(f"{member}-m{index}" for index in range(MACHINES_PER_AGENT))
        config = folder / "agent.yaml"
        config.write_text(
            AGENT_YAML.format(
                member=member, cluster=self.cluster, broker_url=self.broker.url, resources=resources
            )
        )
        (folder / "policy.yaml").write_text(POLICY_YAML)
        process = agent_process(
            self.folder,
            config,
            name=f"agent-{member}",
            module="tests.support.ticking_agent",
            verbose=True,
        )
        site = AgentSite(member, folder, process)
        self.agents.append(site)
        self.processes.append(process)
        return site

    def add_server(self, **options: str) -> KooperantProcess:
        extra = [
            "--client-id",
            f"{self.cluster}-aggregator",
            "--session-expiry",
            str(SESSION_EXPIRY_SECONDS),
        ]
        for name, value in options.items():
            extra += [f"--{name.replace('_', '-')}", value]
        process = server_process(
            self.folder,
            database=self.database_url,
            broker_url=self.broker.url,
            http_port=free_tcp_port(),
            cluster=self.cluster,
            extra=extra,
        )
        self.processes.append(process)
        return process

    def add_ingest_worker(self, name: str, group: str) -> KooperantProcess:
        process = ingest_process(
            self.folder,
            name=name,
            database=self.database_url,
            broker_url=self.broker.url,
            cluster=self.cluster,
            extra=[
                "--client-id",
                f"{self.cluster}-{name}",
                "--shared-group",
                group,
                "--session-expiry",
                str(SESSION_EXPIRY_SECONDS),
            ],
        )
        self.processes.append(process)
        return process

    def start_agents(self) -> None:
        for site in self.agents:
            site.process.start()

    def freeze_agents(self) -> None:
        for site in self.agents:
            site.freeze()

    def sent_ids(self) -> set[str]:
        sent: set[str] = set()
        for site in self.agents:
            sent |= sent_offer_ids(site.audit_log)
        return sent

    def wait_until_stored(self, expected: Callable[[], set[str]]) -> None:
        """Wait until every id ``expected`` returns is in ``offer_history``, or fail."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
        missing: set[str] = set()
        while time.monotonic() < deadline:
            missing = expected() - set(stored_offer_ids(self.database_url, self.cluster))
            if not missing:
                return
            time.sleep(0.5)
        logs = "\n".join(str(process.log_file) for process in self.processes)
        raise AssertionError(
            f"{len(missing)} offers not stored within {DELIVERY_TIMEOUT_SECONDS:.0f} s, "
            f"e.g. {sorted(missing)[:3]}; logs:\n{logs}"
        )

    def wait_until_sent(self) -> None:
        """Wait until no agent has an offer left in its outbox, or fail naming those that do."""
        deadline = time.monotonic() + DELIVERY_TIMEOUT_SECONDS
        queued: dict[str, int] = {}
        while time.monotonic() < deadline:
            queued = {
                site.member: count
                for site in self.agents
                if (count := len(pending_offer_ids(site.audit_log)))
            }
            if not queued:
                return
            time.sleep(0.5)
        raise AssertionError(
            f"offers still queued after {DELIVERY_TIMEOUT_SECONDS:.0f} s: {queued}; logs in "
            f"{', '.join(str(site.process.log_file) for site in self.agents)}"
        )

    def finish(self, test_name: str, report: DeliveryReport) -> DeliveryCounts:
        """Freeze the agents, wait until they sent and the aggregator stored, stop, count."""
        self.freeze_agents()
        self.wait_until_sent()
        self.wait_until_stored(self.sent_ids)
        for site in self.agents:
            site.process.stop()
        # A change still in an agent's debounce at the freeze may have been sent since.
        self.wait_until_stored(self.sent_ids)
        counts = count_delivery(
            test_name,
            self.sent_ids(),
            stored_offer_ids(self.database_url, self.cluster),
            rejected_count(self.database_url, self.cluster),
        )
        report.record(
            test_name,
            sent=counts.sent,
            stored=counts.stored,
            duplicated=counts.duplicated,
            rejected=counts.rejected,
            lost=counts.lost,
        )
        return counts

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            if process.running:
                process.kill()
        self.broker.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[OwnMosquitto]:
    if shutil.which("mosquitto") is None:
        missing_service("the mosquitto program is not installed")
    folder = tmp_path / "mosquitto"
    folder.mkdir()
    # As config/mosquitto/mosquitto.conf: with Mosquitto's default of 1000, the broker dropped
    # offers for the aggregator when three agents drained 60 s of queue faster than it stored.
    mosquitto = OwnMosquitto(folder, persistence=True, extra_config=MOSQUITTO_QUEUE)
    mosquitto.start()
    yield mosquitto
    mosquitto.stop()


def make_cluster(tmp_path: Path, cluster_id: str, broker: OwnMosquitto, database: str) -> Cluster:
    folder = tmp_path / "cluster"
    folder.mkdir()
    return Cluster(cluster_id, folder, broker, database)


@pytest.fixture
def sqlite_cluster(tmp_path: Path, cluster_id: str, broker: OwnMosquitto) -> Iterator[Cluster]:
    cluster = make_cluster(tmp_path, cluster_id, broker, f"sqlite:///{tmp_path / 'server.db'}")
    try:
        yield cluster
    finally:
        cluster.stop_all()


def publish_for(seconds: float) -> None:
    """Let the agents publish for ``seconds``; the processes run meanwhile."""
    time.sleep(seconds)


def assert_delivered_once(counts: DeliveryCounts) -> None:
    assert counts.sent > 0
    assert counts.lost == 0
    assert counts.duplicated == 0
    assert counts.stored == counts.sent
    assert counts.rejected == 0


def test_delivery_broker_killed_for_minute(
    sqlite_cluster: Cluster, delivery_report: DeliveryReport
) -> None:
    cluster = sqlite_cluster
    cluster.add_server().start()
    for member in ("acme", "bolt", "crane"):
        cluster.add_agent(member)
    cluster.start_agents()
    publish_for(PUBLISH_SECONDS)

    cluster.broker.kill()
    publish_for(BROKER_DOWN_SECONDS)
    queued = {site.member: pending_offer_ids(site.audit_log) for site in cluster.agents}
    cluster.broker.start()
    publish_for(PUBLISH_SECONDS)
    counts = cluster.finish("broker killed 60 s", delivery_report)

    # Each agent kept deciding while the broker was away: changes every 0.5 s for 60 s.
    sent = cluster.sent_ids()
    for member, ids in queued.items():
        assert len(ids) >= MACHINES_PER_AGENT * BROKER_DOWN_SECONDS, (member, len(ids))
        assert ids <= sent, (member, len(ids - sent))
    assert_delivered_once(counts)


def test_delivery_aggregator_killed_restarted(
    sqlite_cluster: Cluster, delivery_report: DeliveryReport
) -> None:
    cluster = sqlite_cluster
    server = cluster.add_server()
    server.start()
    for member in ("acme", "bolt"):
        cluster.add_agent(member)
    cluster.start_agents()
    publish_for(PUBLISH_SECONDS)

    server.kill()
    publish_for(PUBLISH_SECONDS)
    server.start()
    publish_for(PUBLISH_SECONDS)
    counts = cluster.finish("aggregator killed", delivery_report)

    assert_delivered_once(counts)


def test_delivery_postgres_restarted(
    tmp_path: Path, cluster_id: str, broker: OwnMosquitto, delivery_report: DeliveryReport
) -> None:
    postgres = OwnPostgres(tmp_path)
    cluster = make_cluster(tmp_path, cluster_id, broker, postgres.url)
    try:
        postgres.start()
        server = cluster.add_server()
        server.start()
        for member in ("acme", "bolt"):
            cluster.add_agent(member)
        cluster.start_agents()
        publish_for(PUBLISH_SECONDS)

        postgres.kill()
        publish_for(PUBLISH_SECONDS)
        postgres.start()
        publish_for(PUBLISH_SECONDS)
        counts = cluster.finish("PostgreSQL killed", delivery_report)

        assert server.running
        assert_delivered_once(counts)
    finally:
        cluster.stop_all()
        postgres.remove()


def test_delivery_agent_killed_with_queue(
    sqlite_cluster: Cluster, delivery_report: DeliveryReport
) -> None:
    cluster = sqlite_cluster
    cluster.add_server().start()
    site = cluster.add_agent("acme")
    cluster.start_agents()
    publish_for(PUBLISH_SECONDS)

    cluster.broker.stop()
    publish_for(PUBLISH_SECONDS)
    site.process.kill()
    queued = pending_offer_ids(site.audit_log)
    cluster.broker.start()
    site.freeze()
    site.process.start()
    cluster.wait_until_stored(lambda: queued)
    counts = cluster.finish("agent killed, queue kept", delivery_report)

    assert len(queued) > 0
    assert queued <= cluster.sent_ids()
    assert_delivered_once(counts)


def impostor_offer(cluster: str, member: str) -> bytes:
    now = datetime.now(UTC)
    offer = Offer(
        cluster=cluster,
        member=member,
        resource="cnc-01",
        kind=ResourceKind.MACHINE,
        generated_at=now,
        state=MachineState.EXECUTING,
    ).with_envelope(Envelope(message_id=new_message_id(), seq=next_sequence(0, now)))
    return offer.to_payload()


async def publish_raw(broker_url: str, messages: list[tuple[str, bytes]]) -> None:
    host, port = broker_url.removeprefix("mqtt://").split(":")
    async with aiomqtt.Client(host, int(port), identifier="impostor") as client:
        for topic, payload in messages:
            await client.publish(topic, payload, qos=1)


def rejected_items(port: int) -> list[dict[str, str]]:
    response = httpx.get(f"http://127.0.0.1:{port}/api/v1/rejected-messages", timeout=5)
    assert response.status_code == 200, response.text
    items: list[dict[str, str]] = response.json()["items"]
    return items


def test_delivery_rejects_impostor_and_unregistered(
    sqlite_cluster: Cluster, delivery_report: DeliveryReport
) -> None:
    cluster = sqlite_cluster
    registration = KooperantProcess(
        "add-member",
        [
            "server",
            "add-member",
            "--cluster",
            cluster.cluster,
            "--member",
            "acme",
            "--database",
            cluster.database_url,
        ],
        cluster.folder,
    )
    registration.start(wait=False)
    assert registration.wait_done() == 0, registration.log_text()
    server = cluster.add_server()
    server.start()
    assert server.http_port is not None
    port = server.http_port
    own = impostor_offer(cluster.cluster, "acme")
    posing = impostor_offer(cluster.cluster, "acme")
    unregistered = impostor_offer(cluster.cluster, "intruder")
    messages = [
        (offer_topic(cluster.cluster, "acme", "cnc-01"), own),
        (offer_topic(cluster.cluster, "bolt", "cnc-01"), posing),
        (offer_topic(cluster.cluster, "intruder", "cnc-01"), unregistered),
    ]

    asyncio.run(publish_raw(cluster.broker.url, messages))
    deadline = time.monotonic() + 20
    while len(rejected_items(port)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    items = rejected_items(port)
    sent = {json.loads(payload)["message_id"] for _, payload in messages}
    stored = stored_offer_ids(cluster.database_url, cluster.cluster)
    counts = count_delivery("impostor and unregistered", sent, stored, len(items))
    delivery_report.record(
        counts.test,
        sent=counts.sent,
        stored=counts.stored,
        duplicated=counts.duplicated,
        rejected=counts.rejected,
        lost=counts.lost - counts.rejected,
    )

    by_topic = {item["topic"]: item for item in items}
    assert set(by_topic) == {messages[1][0], messages[2][0]}
    assert "acme" in by_topic[messages[1][0]]["reason"]
    assert "bolt" in by_topic[messages[1][0]]["reason"]
    assert "intruder" in by_topic[messages[2][0]]["reason"]
    assert "regist" in by_topic[messages[2][0]]["reason"]
    assert counts.stored == 1
    assert counts.duplicated == 0
    assert counts.rejected == 2


def test_delivery_two_ingest_workers_shared(
    tmp_path: Path,
    cluster_id: str,
    broker: OwnMosquitto,
    postgres_url: str,
    delivery_report: DeliveryReport,
) -> None:
    cluster = make_cluster(tmp_path, cluster_id, broker, postgres_url)
    try:
        migrate = KooperantProcess(
            "migrate", ["server", "migrate", "--database", postgres_url], cluster.folder
        )
        migrate.start(wait=False)
        assert migrate.wait_done() == 0, migrate.log_text()
        workers = [cluster.add_ingest_worker(f"worker-{index}", "g") for index in (1, 2)]
        for worker in workers:
            worker.start()
        for member in ("acme", "bolt", "crane"):
            cluster.add_agent(member)
        cluster.start_agents()
        publish_for(2 * PUBLISH_SECONDS)
        counts = cluster.finish("two shared ingest workers", delivery_report)

        assert all(worker.running for worker in workers)
        assert_delivered_once(counts)
    finally:
        cluster.stop_all()
