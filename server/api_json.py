"""The JSON representation of resources, members and rejected messages in the API."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from kooperant.intervals import Interval
from kooperant.protocol import Band
from server.storage import ANONYMOUS, MemberRecord, RejectedRecord, ResourceRecord, Viewer

REJECTED_EXCERPT_CHARS = 1000


def time_json(value: datetime | None) -> str | None:
    """Return ``value`` as RFC 3339 in UTC, cut to whole seconds like the agent's payloads."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="seconds")


def _interval_json(interval: Interval) -> dict[str, str | None]:
    return {"start": time_json(interval.start), "end": time_json(interval.end)}


def _band_json(band: Band | None) -> dict[str, float | None] | None:
    return band.to_json() if band is not None else None


def resource_json(record: ResourceRecord, viewer: Viewer = ANONYMOUS) -> dict[str, Any]:
    """Return the API representation of one resource as ``viewer`` may see it.

    ``audience`` is included only for the member that owns the offer.
    """
    data = {
        "cluster": record.cluster,
        "member": record.member,
        "resource": record.resource,
        "kind": record.kind,
        "name": record.name,
        "capabilities": list(record.capabilities),
        "state": record.state,
        "state_since": time_json(record.state_since),
        "free_hours": round(record.free_hours, 4) if record.free_hours is not None else None,
        "free_hours_band": _band_json(record.free_hours_band),
        "free_intervals": [_interval_json(item) for item in record.free_intervals],
        "horizon": _interval_json(record.horizon) if record.horizon is not None else None,
        "amounts": list(record.amounts),
        "price": record.price.to_json() if record.price is not None else None,
        "suppliers": list(record.suppliers),
        "customers": list(record.customers),
        "expires_at": time_json(record.expires_at),
        "accepts_requests": record.accepts_requests,
        "generated_at": time_json(record.generated_at),
        "updated_at": time_json(record.received_at),
    }
    if viewer.owns(record.cluster, record.member):
        data["audience"] = list(record.audience) if record.audience is not None else None
    return data


def member_json(record: MemberRecord) -> dict[str, Any]:
    return {
        "cluster": record.cluster,
        "member": record.member,
        "resources": record.resources,
        "first_seen": time_json(record.first_seen),
        "last_seen": time_json(record.last_seen),
        "status": record.status,
        "status_since": time_json(record.status_since),
        "registered": record.registered,
    }


def rejected_json(record: RejectedRecord) -> dict[str, Any]:
    excerpt = record.payload[:REJECTED_EXCERPT_CHARS]
    return {
        "id": record.id,
        "received_at": time_json(record.received_at),
        "topic": record.topic,
        "reason": record.reason,
        "payload_excerpt": excerpt,
        "payload_truncated": len(record.payload) > len(excerpt),
    }
