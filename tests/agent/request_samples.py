"""Capacity requests and offers for the agent's request tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.audit import AuditLog
from kooperant.intervals import Interval
from kooperant.protocol import offer_topic
from kooperant.protocol.request import CapacityRequest, Contact, RequestedAmount

RECEIVED = datetime(2026, 3, 2, 9, tzinfo=UTC)
MEMBER = "acme"
REQUEST_ID = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5b"
OTHER_ID = "3f2b8c1e-7d4a-4e5f-9a6b-0c1d2e3f4a5c"
SLOT = Interval(datetime(2026, 3, 3, 7, tzinfo=UTC), datetime(2026, 3, 3, 11, tzinfo=UTC))


def slot_request(
    cluster: str,
    request_id: str = REQUEST_ID,
    resource: str = "frezarka-1",
    slot: Interval = SLOT,
    expires_in: timedelta = timedelta(days=2),
    at: datetime = RECEIVED,
) -> CapacityRequest:
    return CapacityRequest(
        request_id=request_id,
        cluster=cluster,
        member=MEMBER,
        resource=resource,
        requester="beta-tools",
        created_at=at - timedelta(minutes=5),
        expires_at=at + expires_in,
        contact=Contact("Anna Nowak", email="anna.nowak@beta.example", phone="+48 58 123 45 67"),
        message="Potrzebujemy frezowania 5-osiowego.",
        slot=slot,
    )


def amount_request(
    cluster: str, request_id: str = OTHER_ID, value: float = 3.0, at: datetime = RECEIVED
) -> CapacityRequest:
    return CapacityRequest(
        request_id=request_id,
        cluster=cluster,
        member=MEMBER,
        resource="it-team",
        requester="beta-tools",
        created_at=at - timedelta(minutes=5),
        expires_at=at + timedelta(days=2),
        contact=Contact("Jan Kowalski", email="jan@beta.example"),
        amount=RequestedAmount("person_days", value, "days", "python"),
    )


def record_offer(
    path: Path, cluster: str, resource: str, accepts_requests: bool, **fields: Any
) -> None:
    """Record an offer of ``resource`` as sent, taking requests or not, with further ``fields``."""
    payload = {"kind": "machine", "resource": resource, "accepts_requests": accepts_requests}
    payload.update(fields)
    with AuditLog(path) as log:
        log.record(offer_topic(cluster, MEMBER, resource), json.dumps(payload).encode(), RECEIVED)
