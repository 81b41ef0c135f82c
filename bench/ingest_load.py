"""Simulated agents for the ingest benchmarks: publisher processes and a bare subscriber.

Each publisher process owns a share of the members and builds one offer template per
(member, resource) from the generator of ``bench/search_data.py``: a ``kooperant.offer/1.2``
payload of about 600 to 1,500 bytes. A message is a template with a unique message id and a
sequence number patched in, so the bytes of a step are joined before the step starts and the
timed loop spends its CPU on MQTT. Sequence numbers grow per publisher over the whole run, and
a resource belongs to one publisher, so each resource's offers arrive in increasing ``seq``.

Message ids are ``b{run}-{publisher:03d}-{serial:09d}``: ``expected_message_ids`` rebuilds the
set of what was published from the serial ranges the publishers report, to compare it with
``offer_history.message_id``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.mqtt_publisher import RawPublisher, publish_packet
from bench.search_data import CLUSTER, generated_offer, member_id
from kooperant.protocol import Envelope, offer_subscription, offer_topic

TOPIC_FILTER = offer_subscription(CLUSTER)
ID_PLACEHOLDER = "X" * 23
SEQ_PLACEHOLDER = 9_999_999_999_999
SEQ_BASE = 1_000_000_000_000
# How long a publisher waits for the broker's PUBACKs after its last publish of a batch.
ACK_WAIT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 10.0
QUIET_SECONDS = 5.0
STOP = "stop"


@dataclass(frozen=True, slots=True)
class Template:
    """One resource's offer payload, split around its message id and sequence number."""

    topic: str
    head: bytes
    middle: bytes
    tail: bytes
    id_first: bool

    def payload(self, message_id: bytes, seq: bytes) -> bytes:
        if self.id_first:
            return b"".join((self.head, message_id, self.middle, seq, self.tail))
        return b"".join((self.head, seq, self.middle, message_id, self.tail))


@dataclass(frozen=True, slots=True)
class LoadShape:
    """Members and resources of the simulated cluster, and the broker the agents use."""

    members: int
    resources: int
    broker_port: int
    run_tag: str
    inflight: int = 1000
    seed: int = 11


@dataclass(frozen=True, slots=True)
class Batch:
    """The messages one publisher sends in one batch: ``count`` messages, at ``rate`` per second.

    ``rate=None`` publishes as fast as the publisher can; otherwise publishing stops at
    ``seconds`` after the start even if fewer than ``count`` messages went out.
    """

    count: int
    rate: float | None
    seconds: float


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The messages one publisher sent in one batch (``end_serial`` is exclusive)."""

    publisher: int
    first_serial: int
    end_serial: int
    acknowledged: int
    started: float
    last_sent: float
    finished: float
    cpu_seconds: float

    @property
    def published(self) -> int:
        return self.end_serial - self.first_serial


def build_templates(shape: LoadShape, publisher: int, publishers: int) -> list[Template]:
    """Build the templates of the members that ``publisher`` simulates (every n-th member)."""
    now = datetime.now(UTC).replace(microsecond=0)
    names = [member_id(index) for index in range(1, shape.members + 1)]
    templates = []
    for index in range(publisher, shape.members, publishers):
        generator = random.Random(shape.seed * 1_000_003 + index)
        for position in range(1, shape.resources + 1):
            offer = generated_offer(generator, names, names[index], position, now).offer
            offer = dataclasses.replace(offer, envelope=Envelope(ID_PLACEHOLDER, SEQ_PLACEHOLDER))
            templates.append(
                split_template(
                    offer_topic(CLUSTER, offer.member, offer.resource), offer.to_payload()
                )
            )
    return templates


def split_template(topic: str, payload: bytes) -> Template:
    """Split ``payload`` around the placeholders; raise ``ValueError`` if either is not unique."""
    id_bytes = ID_PLACEHOLDER.encode()
    seq_bytes = str(SEQ_PLACEHOLDER).encode()
    for marker in (id_bytes, seq_bytes):
        if payload.count(marker) != 1:
            raise ValueError(
                f"the offer payload on {topic} contains {marker!r} "
                f"{payload.count(marker)} times, not once"
            )
    id_at = payload.index(id_bytes)
    seq_at = payload.index(seq_bytes)
    first, first_end, second = (
        (id_at, id_at + len(id_bytes), seq_at)
        if id_at < seq_at
        else (seq_at, seq_at + len(seq_bytes), id_at)
    )
    second_end = second + (len(seq_bytes) if id_at < seq_at else len(id_bytes))
    return Template(
        topic, payload[:first], payload[first_end:second], payload[second_end:], id_at < seq_at
    )


def message_id(run_tag: str, publisher: int, serial: int) -> str:
    return f"b{run_tag}-{publisher:03d}-{serial:09d}"


def expected_message_ids(run_tag: str, results: Sequence[BatchResult]) -> Iterator[str]:
    """Yield the message id of every message that ``results`` report as published."""
    for result in results:
        for serial in range(result.first_serial, result.end_serial):
            yield message_id(run_tag, result.publisher, serial)


class Publishers:
    """Publisher processes, each with its own MQTT connection, driven batch by batch."""

    def __init__(self, shape: LoadShape, count: int) -> None:
        self.shape = shape
        self._context = multiprocessing.get_context("fork")
        self._pipes: list[Connection] = []
        self._processes: list[multiprocessing.process.BaseProcess] = []
        for index in range(count):
            parent, child = self._context.Pipe()
            process = self._context.Process(
                target=_publisher_main,
                args=(shape, index, count, child),
                daemon=True,
                name=f"publisher-{index}",
            )
            process.start()
            child.close()
            self._pipes.append(parent)
            self._processes.append(process)
        for index, pipe in enumerate(self._pipes):
            reply = self._receive(pipe, index, timeout=300.0)
            if reply != "ready":
                raise RuntimeError(f"publisher {index} failed to start: {reply}")

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self._processes if process.pid is not None]

    def run(
        self,
        total: int,
        rate: float | None,
        seconds: float,
        keep_going: Callable[[], bool] | None = None,
    ) -> list[BatchResult]:
        """Publish ``total`` messages split over the publishers; return each one's result.

        ``keep_going`` is called about once a second while they publish; when it returns False
        the publishers stop early and report what they sent.
        """
        count = len(self._pipes)
        shares = [total // count + (1 if index < total % count else 0) for index in range(count)]
        for pipe, share in zip(self._pipes, shares, strict=True):
            pipe.send(Batch(share, None if rate is None else rate / count, seconds))
        for index, pipe in enumerate(self._pipes):
            reply = self._receive(pipe, index, timeout=600.0)
            if reply != "prepared":
                raise RuntimeError(f"publisher {index} failed to prepare its batch: {reply}")
        start_at = time.monotonic() + 0.2
        for pipe in self._pipes:
            pipe.send(start_at)
        return self._collect(seconds + ACK_WAIT_SECONDS + 600.0, keep_going)

    def _collect(self, timeout: float, keep_going: Callable[[], bool] | None) -> list[BatchResult]:
        results: dict[int, BatchResult] = {}
        deadline = time.monotonic() + timeout
        stopped = False
        next_check = time.monotonic() + 1.0
        while len(results) < len(self._pipes):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the publishers did not finish within {timeout:.0f} s")
            for index, pipe in enumerate(self._pipes):
                if index in results or not pipe.poll(0):
                    continue
                reply = self._receive(pipe, index, timeout=1.0)
                if not isinstance(reply, BatchResult):
                    raise RuntimeError(f"publisher {index} failed: {reply}")
                results[index] = reply
            if len(results) == len(self._pipes):
                break
            time.sleep(0.05)
            if stopped or keep_going is None or time.monotonic() < next_check:
                continue
            next_check = time.monotonic() + 1.0
            if not keep_going():
                stopped = True
                for pipe in self._pipes:
                    pipe.send(STOP)
        return [results[index] for index in range(len(self._pipes))]

    def close(self) -> None:
        for pipe in self._pipes:
            with contextlib.suppress(OSError):
                pipe.send(None)
        for process in self._processes:
            process.join(5.0)
            if process.is_alive():
                process.kill()
                process.join(5.0)

    def _receive(self, pipe: Connection, index: int, timeout: float) -> Any:
        if not pipe.poll(timeout):
            raise TimeoutError(f"publisher {index} did not respond within {timeout:.0f} s")
        try:
            return pipe.recv()
        except EOFError as error:
            raise RuntimeError(
                f"publisher {index} exited (status {self._processes[index].exitcode})"
            ) from error


def _publisher_main(shape: LoadShape, index: int, count: int, pipe: Connection) -> None:
    try:
        templates = build_templates(shape, index, count)
        connection = RawPublisher(f"bench-publisher-{shape.run_tag}-{index}", shape.broker_port)
    except Exception as error:
        pipe.send(f"{type(error).__name__}: {error}")
        return
    pipe.send("ready")
    serial = 0
    try:
        while (batch := pipe.recv()) is not None:
            if batch == STOP:
                continue
            packets = _batch_packets(shape.run_tag, index, templates, serial, batch.count)
            pipe.send("prepared")
            start_at = pipe.recv()
            result = _publish(
                connection, packets, batch, start_at, shape.inflight, index, serial, pipe
            )
            serial = result.end_serial
            pipe.send(result)
    finally:
        connection.close()


def _batch_packets(
    run_tag: str, publisher: int, templates: Sequence[Template], first_serial: int, count: int
) -> list[bytes]:
    packets = []
    for serial in range(first_serial, first_serial + count):
        template = templates[serial % len(templates)]
        identifier = message_id(run_tag, publisher, serial).encode()
        seq = str(SEQ_BASE + serial).encode()
        payload = template.payload(identifier, seq)
        packets.append(publish_packet(template.topic, payload, packet_id=serial % 65535 + 1))
    return packets


def _publish(
    connection: RawPublisher,
    packets: Sequence[bytes],
    batch: Batch,
    start_at: float,
    inflight: int,
    publisher: int,
    first_serial: int,
    pipe: Connection,
) -> BatchResult:
    """Send ``packets`` from ``start_at`` on, paced to ``batch.rate``; wait for the PUBACKs.

    At most ``inflight`` messages are unacknowledged at any time, as a client with that
    in-flight window would keep them. A ``STOP`` from the parent ends the batch early.
    """
    cpu_before = time.process_time()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    acknowledged_before = connection.acknowledged
    started = time.monotonic()
    deadline = started + batch.seconds
    sent = 0
    total = len(packets)
    next_check = started
    while sent < total:
        now = time.monotonic()
        if batch.rate is not None and now >= deadline:
            break
        if now >= next_check:
            next_check = now + 0.05
            if pipe.poll() and pipe.recv() == STOP:
                break
        acknowledged = connection.read_acknowledgements() - acknowledged_before
        due = total if batch.rate is None else min(total, int(batch.rate * (now - started)) + 1)
        due = min(due, acknowledged + inflight)
        if sent >= due:
            # Sleep until the next message is due (at most 10 ms), or 1 ms for a PUBACK.
            wait = 0.001 if batch.rate is None else (sent + 1) / batch.rate - (now - started)
            connection.read_acknowledgements(wait=min(0.01, max(0.001, wait)))
            continue
        connection.send(b"".join(packets[sent:due]))
        sent = due
    last_sent = time.monotonic()
    ack_deadline = last_sent + ACK_WAIT_SECONDS
    while connection.acknowledged - acknowledged_before < sent and time.monotonic() < ack_deadline:
        connection.read_acknowledgements(wait=0.001)
    finished = time.monotonic()
    return BatchResult(
        publisher=publisher,
        first_serial=first_serial,
        end_serial=first_serial + sent,
        acknowledged=connection.acknowledged - acknowledged_before,
        started=started,
        last_sent=last_sent,
        finished=finished,
        cpu_seconds=time.process_time() - cpu_before,
    )


class BareSubscriber:
    """A paho subscriber in its own process: QoS 1 on ``TOPIC_FILTER``; it acks and discards."""

    def __init__(self, shape: LoadShape) -> None:
        context = multiprocessing.get_context("fork")
        self._pipe, child = context.Pipe()
        self._process = context.Process(
            target=_subscriber_main, args=(shape, child), daemon=True, name="bare-subscriber"
        )
        self._process.start()
        child.close()
        if not self._pipe.poll(30.0) or self._pipe.recv() != "subscribed":
            self.close()
            raise RuntimeError("the bare subscriber did not subscribe within 30 s")

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def finish(self, expected: int, timeout: float) -> tuple[int, float | None]:
        """Wait for ``expected`` messages or ``timeout``; return the count and the last arrival.

        The arrival is a ``time.monotonic`` value, None if no message arrived.
        """
        self._pipe.send((expected, timeout))
        if not self._pipe.poll(timeout + 30.0):
            raise TimeoutError("the bare subscriber did not report its count")
        count, last = self._pipe.recv()
        return count, last

    def close(self) -> None:
        self._process.join(5.0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5.0)


def _subscriber_main(shape: LoadShape, pipe: Connection) -> None:
    arrivals = _Arrivals()
    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"bench-bare-{shape.run_tag}",
        protocol=mqtt.MQTTv311,
        clean_session=True,
    )
    client.on_message = lambda *_: arrivals.add()
    client.on_subscribe = lambda *_: subscribed.set()
    client.connect("127.0.0.1", shape.broker_port, keepalive=60)
    client.loop_start()
    client.subscribe(TOPIC_FILTER, qos=1)
    pipe.send("subscribed" if subscribed.wait(CONNECT_TIMEOUT_SECONDS) else "not subscribed")

    # Stop at the expected count, at the timeout, or when nothing arrived for QUIET_SECONDS:
    # a broker that dropped messages would otherwise keep the subscriber waiting.
    expected, timeout = pipe.recv()
    deadline = time.monotonic() + timeout
    while arrivals.count < expected and time.monotonic() < deadline:
        last = arrivals.last
        if last is not None and time.monotonic() - last > QUIET_SECONDS:
            break
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    pipe.send((arrivals.count, arrivals.last))


class _Arrivals:
    """The count of messages received and the ``time.monotonic`` of the last one."""

    def __init__(self) -> None:
        self.count = 0
        self.last: float | None = None

    def add(self) -> None:
        self.last = time.monotonic()
        self.count += 1
