"""Ingest fed 10,000 malformed messages, interleaved with valid offers, on SQLite.

Hypothesis draws batches of malformed messages. They are random bytes, invalid UTF-8, JSON of
the wrong shape, and valid offers, withdrawals and status messages with one field broken. Others
have non-finite numbers, deep nesting, sizes near the limit, unknown schema names or major
versions, or a topic that names another member, cluster or resource.
``Ingest.handle_message`` must never raise, must store every malformed message in
``rejected_messages`` with a non-empty reason, and must store every valid offer of the batch.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from kooperant.intervals import Interval
from kooperant.protocol import (
    MAX_PAYLOAD_BYTES,
    Envelope,
    MachineState,
    Offer,
    ResourceKind,
    new_message_id,
    offer_topic,
    status_topic,
    withdrawal_topic,
)
from server.ingest import Ingest, IngestSettings
from server.mqtt_url import parse_broker_url
from server.status import ServerStatus
from server.storage import Storage
from server.storage.tables import offer_history, rejected_messages

CLUSTER = "fuzz"
MEMBER = "acme"
RESOURCE = "cnc-01"
BATCH_SIZE = 50
BATCHES = 200  # 200 batches of 50: 10,000 malformed messages
VALID_PER_BATCH = 3
TIME_BUDGET_SECONDS = 90.0
GENERATED_AT = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)

JsonObject = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    topic: str
    payload: bytes
    category: str


def base_offer() -> JsonObject:
    """A valid offer of ``RESOURCE`` as JSON; malformed cases break one thing in a copy."""
    offer = Offer(
        cluster=CLUSTER,
        member=MEMBER,
        resource=RESOURCE,
        kind=ResourceKind.MACHINE,
        generated_at=GENERATED_AT,
        name="DMG MORI DMU 50",
        capabilities=("5-axis-milling",),
        state=MachineState.NOT_EXECUTING,
        state_since=GENERATED_AT - timedelta(minutes=5),
        horizon=Interval(GENERATED_AT, GENERATED_AT + timedelta(days=14)),
        free_hours=6.0,
        free_intervals=(Interval(GENERATED_AT, GENERATED_AT + timedelta(hours=6)),),
    ).with_envelope(Envelope(message_id=new_message_id(), seq=1))
    return offer.to_json()


def base_withdrawal() -> JsonObject:
    return {
        "schema": "kooperant.withdrawal/1.1",
        "cluster": CLUSTER,
        "member": MEMBER,
        "resource": RESOURCE,
        "withdrawn_at": "2026-12-04T12:00:00+00:00",
        "reason": "withdrawn",
        "delete_history": False,
        "message_id": "wd-1",
        "seq": 2,
    }


def base_status() -> JsonObject:
    return {
        "schema": "kooperant.status/1.0",
        "cluster": CLUSTER,
        "member": MEMBER,
        "state": "offline",
        "connected_at": "2026-12-04T09:00:00+00:00",
        "reason": "connection_lost",
        "message_id": "status-1",
        "seq": 3,
    }


BAD_IDS: list[Any] = ["", "a/b", "+", "#", "has space", "x" * 65, "-lead", 5, None, ["acme"]]
BAD_TIMES: list[Any] = [
    "yesterday",
    "2026-13-01T00:00:00Z",
    "2026-02-30T10:00:00Z",
    "2026-12-04T10:00:00",
    "2026-12-04",
    0,
    None,
    "",
]
BAD_MESSAGE_IDS: list[Any] = ["", "has space", "x" * 129, "/slash", "-lead", 5, None]
BAD_SEQS: list[Any] = [0, -1, 2**53, "1", 1.5, None, [1]]
BAD_SCHEMAS: list[Any] = [
    "kooperant.offer/2",
    "kooperant.offer/2.0",
    "kooperant.offer/0",
    "kooperant.offer/3.1",
    "kooperant.offers/1",
    "kooperant.withdrawal/1.1",
    "kooperant.status/1.0",
    "kooperant.offer/1.x",
    "kooperant.offer/",
    "kooperant.offer",
    "",
    None,
    1,
]
REVERSED = {"start": "2026-12-05T00:00:00+00:00", "end": "2026-12-04T00:00:00+00:00"}

# Each value makes an otherwise valid offer invalid.
OFFER_BREAKS: dict[str, list[Any]] = {
    "schema": BAD_SCHEMAS,
    "cluster": BAD_IDS,
    "member": BAD_IDS,
    "resource": BAD_IDS,
    "kind": ["robot", "", 3, None, ["machine"]],
    "generated_at": BAD_TIMES,
    "name": ["", 7, "x" * 201, ["a"]],
    "capabilities": ["milling", [1], ["a", "a"], [""], {"a": 1}],
    "state": ["Running", 1, ""],
    "state_since": BAD_TIMES,
    "horizon": [REVERSED, "x", {"start": "2026-12-04T00:00:00+00:00"}, []],
    "free_hours": [-1, "5", None, [], {}, True],
    "free_intervals": [[REVERSED], "x", [1], [{"start": "2026-12-04T00:00:00+00:00"}]],
    "message_id": BAD_MESSAGE_IDS,
    "seq": BAD_SEQS,
    "unknown_field": [1, "x", None],
}
WITHDRAWAL_BREAKS: dict[str, list[Any]] = {
    "schema": ["kooperant.withdrawal/2", "kooperant.offer/1.1", "", None],
    "member": BAD_IDS,
    "withdrawn_at": BAD_TIMES,
    "reason": ["bored", "", 1, None],
    "delete_history": ["yes", 1, None],
    "message_id": BAD_MESSAGE_IDS,
    "seq": BAD_SEQS,
    "unknown_field": [1],
}
STATUS_BREAKS: dict[str, list[Any]] = {
    "schema": ["kooperant.status/2", "kooperant.offer/1.1", "", None],
    "cluster": BAD_IDS,
    "member": BAD_IDS,
    "state": ["sleeping", "", 1, None],
    "connected_at": BAD_TIMES,
    "reason": ["tired", 1, ""],
    "message_id": BAD_MESSAGE_IDS,
    "seq": BAD_SEQS,
    "unknown_field": [1],
}
REQUIRED_OFFER_FIELDS = ("schema", "cluster", "member", "resource", "kind", "generated_at")
NON_FINITE = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")


def encode(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


def broken(base: JsonObject, field: str, value: Any) -> JsonObject:
    copy = dict(base)
    copy[field] = value
    return copy


OFFER_TOPIC = offer_topic(CLUSTER, MEMBER, RESOURCE)
WITHDRAWAL_TOPIC = withdrawal_topic(CLUSTER, MEMBER, RESOURCE)
STATUS_TOPIC = status_topic(CLUSTER, MEMBER)


@st.composite
def random_bytes(draw: st.DrawFn) -> Message:
    payload = draw(st.binary(min_size=1, max_size=300))
    return Message(draw(st.sampled_from([OFFER_TOPIC, WITHDRAWAL_TOPIC])), payload, "bytes")


@st.composite
def invalid_utf8(draw: st.DrawFn) -> Message:
    payload = encode(base_offer())
    position = draw(st.integers(0, len(payload)))
    bad = draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf8\x88"]))
    return Message(OFFER_TOPIC, payload[:position] + bad + payload[position:], "invalid utf-8")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def wrong_shape(draw: st.DrawFn) -> Message:
    value = draw(json_values)
    return Message(draw(st.sampled_from([OFFER_TOPIC, WITHDRAWAL_TOPIC])), encode(value), "shape")


@st.composite
def broken_field(draw: st.DrawFn) -> Message:
    kind = draw(st.sampled_from(["offer", "withdrawal", "status"]))
    table, base, topic = {
        "offer": (OFFER_BREAKS, base_offer(), OFFER_TOPIC),
        "withdrawal": (WITHDRAWAL_BREAKS, base_withdrawal(), WITHDRAWAL_TOPIC),
        "status": (STATUS_BREAKS, base_status(), STATUS_TOPIC),
    }[kind]
    field = draw(st.sampled_from(sorted(table)))
    value = draw(st.sampled_from(table[field]))
    return Message(topic, encode(broken(base, field, value)), f"{kind} {field}")


@st.composite
def missing_field(draw: st.DrawFn) -> Message:
    data = base_offer()
    del data[draw(st.sampled_from(REQUIRED_OFFER_FIELDS))]
    return Message(OFFER_TOPIC, encode(data), "missing field")


@st.composite
def non_finite(draw: st.DrawFn) -> Message:
    token = draw(st.sampled_from(NON_FINITE))
    text = encode(broken(base_offer(), "free_hours", "@@")).decode()
    return Message(OFFER_TOPIC, text.replace('"@@"', token).encode(), "non-finite")


@st.composite
def deep_nesting(draw: st.DrawFn) -> Message:
    depth = draw(st.sampled_from([100, 1_000, 10_000, 100_000]))
    nested = "[" * depth + "]" * depth
    text = encode(broken(base_offer(), "name", "@@")).decode().replace('"@@"', nested)
    payload = draw(st.sampled_from([text.encode(), nested.encode(), ("{" * depth).encode()]))
    return Message(OFFER_TOPIC, payload, "deep nesting")


@st.composite
def near_size_limit(draw: st.DrawFn) -> Message:
    """A valid offer padded just over the limit, or one with a too long name just under it.

    JSON allows whitespace between tokens, so trailing spaces change the size and nothing else.
    """
    over = draw(st.booleans())
    margin = draw(st.integers(1, 100))
    if over:
        payload = encode(base_offer())
        target = MAX_PAYLOAD_BYTES + margin
    else:
        payload = encode(broken(base_offer(), "name", "x" * 300))
        target = MAX_PAYLOAD_BYTES - margin
    payload += b" " * (target - len(payload))
    return Message(OFFER_TOPIC, payload, "over limit" if over else "near limit")


@st.composite
def other_owner(draw: st.DrawFn) -> Message:
    """A valid offer or withdrawal on a topic of another member, cluster or resource."""
    part = draw(st.sampled_from(["member", "cluster", "resource"]))
    names = {"cluster": CLUSTER, "member": MEMBER, "resource": RESOURCE}
    names[part] = "other-" + part
    if draw(st.booleans()):
        return Message(offer_topic(**names), encode(base_offer()), f"offer on other {part}")
    return Message(
        withdrawal_topic(**names), encode(base_withdrawal()), f"withdrawal on other {part}"
    )


@st.composite
def bad_topic(draw: st.DrawFn) -> Message:
    """A valid offer on a topic that matches the subscription but has an invalid id."""
    member = draw(st.sampled_from(["has space", "x" * 65, "-lead", "a.b:c"]))
    return Message(
        f"kooperant/v1/{CLUSTER}/{member}/offers/{RESOURCE}", encode(base_offer()), "topic"
    )


@st.composite
def malformed(draw: st.DrawFn) -> Message:
    # Payloads near the size limit cost about a megabyte each, so they are drawn rarely.
    generator = draw(
        st.sampled_from(
            [random_bytes(), invalid_utf8(), wrong_shape(), missing_field(), non_finite()]
            + [broken_field()] * 6
            + [deep_nesting(), other_owner(), other_owner(), bad_topic()]
            + [near_size_limit()] * int(draw(st.integers(0, 19)) == 0)
        )
    )
    return draw(generator)


def valid_offer(resource: str, seq: int) -> Message:
    data = base_offer()
    data.update(resource=resource, message_id=f"valid-{uuid.uuid4()}", seq=seq)
    return Message(offer_topic(CLUSTER, MEMBER, resource), encode(data), "valid")


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    # Every rejection is one commit, and with SQLite's default synchronous=FULL each commit waits
    # for fsync. A folder in memory (/dev/shm) removes that wait where Linux has one.
    memory = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(dir=memory)) if memory.is_dir() else tmp_path
    store = Storage(f"sqlite:///{folder / 'fuzz.db'}")
    store.migrate()
    yield store
    store.close()
    if folder != tmp_path:
        shutil.rmtree(folder)


def count_rows(storage: Storage, table: Any, *where: Any) -> int:
    with storage.engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(table).where(*where)).scalar_one()
        )


def test_ingest_fuzz_rejects_malformed_stores_valid(storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1")
    ingest = Ingest(storage, status, IngestSettings(broker=parse_broker_url("mqtt://127.0.0.1:1")))
    sent: dict[str, int] = {"malformed": 0, "valid": 0}
    categories: dict[str, int] = {}
    valid_resources: list[str] = []
    started = time.monotonic()

    with asyncio.Runner() as runner:

        @settings(
            max_examples=BATCHES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(batch=st.lists(malformed(), min_size=BATCH_SIZE, max_size=BATCH_SIZE))
        def feed(batch: list[Message]) -> None:
            rejected_before = count_rows(storage, rejected_messages)
            valid = [
                valid_offer(f"valid-{sent['valid'] + index}", seq=sent["valid"] + index + 1)
                for index in range(VALID_PER_BATCH)
            ]
            # Valid offers go first, in the middle and last, between the malformed ones.
            step = len(batch) // (VALID_PER_BATCH - 1)
            messages = list(batch)
            for index, message in enumerate(valid):
                messages.insert(min(index * step + index, len(messages)), message)

            for message in messages:
                runner.run(ingest.handle_message(message.topic, message.payload))

            sent["malformed"] += len(batch)
            sent["valid"] += len(valid)
            valid_resources.extend(message.topic.rsplit("/", 1)[1] for message in valid)
            for message in batch:
                categories[message.category] = categories.get(message.category, 0) + 1
            rejected_now = count_rows(storage, rejected_messages) - rejected_before
            assert rejected_now == len(batch), [message.category for message in batch]

        feed()

    elapsed = time.monotonic() - started
    assert sent["malformed"] == BATCHES * BATCH_SIZE
    assert count_rows(storage, rejected_messages) == sent["malformed"]
    assert count_rows(storage, rejected_messages, rejected_messages.c.reason == "") == 0
    assert status.rejected_messages == sent["malformed"]
    stored = count_rows(
        storage,
        offer_history,
        offer_history.c.resource.in_(valid_resources),
    )
    assert stored == sent["valid"]
    assert elapsed < TIME_BUDGET_SECONDS, f"{elapsed:.1f} s for {sent} ({categories})"


def test_ingest_deep_nesting_clear_reason(storage: Storage) -> None:
    status = ServerStatus(broker_url="mqtt://127.0.0.1:1")
    ingest = Ingest(storage, status, IngestSettings(broker=parse_broker_url("mqtt://127.0.0.1:1")))
    nested = "[" * 100_000 + "]" * 100_000
    payload = encode(broken(base_offer(), "name", "@@")).decode().replace('"@@"', nested)

    asyncio.run(ingest.handle_message(OFFER_TOPIC, payload.encode()))

    rejected = storage.list_rejected(limit=1)
    assert len(rejected) == 1
    assert rejected[0].reason.endswith(
        "nested too deeply; no kooperant message nests more than a few levels"
    )
