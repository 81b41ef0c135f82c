"""Capacity requests: creation with the checks against the offer, reads, withdrawal, answers.

Each function runs inside the caller's connection or transaction (``Storage`` opens them). The
states follow docs/protocol.md: ``sent`` when stored, ``delivered`` when the owner's agent stored
it, ``accepted`` or ``declined`` when the owner decided, ``expired`` and ``withdrawn`` decided by
the aggregator. The last four are final, and a final request never changes again.

A request is readable by its requester, by the owner of the offer and by a coordinator of its
cluster. For everyone else it does not exist, and an offer the requester may not see looks the
same as a missing offer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, Select, and_, func, insert, select, update

from kooperant.intervals import Interval
from kooperant.protocol.answer import Answer
from kooperant.protocol.request import CapacityRequest, Contact, RequestedAmount
from server.errors import (
    InvalidRequestError,
    RequestConflictError,
    RequestForbiddenError,
    RequestNotFoundError,
)
from server.storage.tables import (
    capacity_requests,
    free_intervals,
    request_log,
    resource_amounts,
    resources,
)
from server.storage.visibility import Viewer, visible_offer_conditions

# Months of the coordinator's counts are calendar months of this zone, like its capacity plot.
COUNTS_TIMEZONE = ZoneInfo("Europe/Warsaw")


class RequestState(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"


OPEN_STATES = (RequestState.SENT, RequestState.DELIVERED)
FINAL_STATES = (
    RequestState.ACCEPTED,
    RequestState.DECLINED,
    RequestState.EXPIRED,
    RequestState.WITHDRAWN,
)


class AnswerOutcome(StrEnum):
    """What ``apply_answer`` did with an answer."""

    APPLIED = "applied"
    """The request moved to the answer's state."""
    UNCHANGED = "unchanged"
    """The request was in the answer's state already; only the answer's seq was recorded."""
    UNKNOWN_REQUEST = "unknown_request"
    MISMATCH = "mismatch"
    """The answer's cluster, member or resource differ from the stored request."""
    FINAL = "final"
    """The request is final already, so the answer came too late."""
    STALE = "stale"
    """The answer's seq is not above that of the last answer applied."""


@dataclass(frozen=True, slots=True)
class RequestLogEntry:
    at: datetime
    state: RequestState
    note: str | None


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """A stored request with its current state; ``log`` is filled only by ``get_request``."""

    request: CapacityRequest
    state: RequestState
    state_at: datetime
    reason: str | None
    """The owner's reason of a declined request."""
    log: tuple[RequestLogEntry, ...] = ()


@dataclass(frozen=True, slots=True)
class RequestPage:
    items: tuple[RequestRecord, ...]
    total: int


@dataclass(frozen=True, slots=True)
class RequestMonthCount:
    """How many requests created in ``month`` (its first day) are in ``state`` now."""

    month: date
    state: RequestState
    count: int


# Creation


def create_request(
    connection: Connection, request: CapacityRequest, viewer: Viewer, now: datetime
) -> RequestRecord:
    """Check ``request`` against the offer ``viewer`` may see at ``now`` and store it as sent.

    Raises ``RequestConflictError`` when the offer does not take requests: its owner's policy
    switched them off, or its agent predates requests.
    """
    _check_requester(request, viewer)
    key = (request.cluster, request.member, request.resource)
    offer = connection.execute(
        select(resources.c.kind, resources.c.accepts_requests).where(
            *visible_offer_conditions(viewer, now), *_offer_key(resources, key)
        )
    ).one_or_none()
    if offer is None:
        raise RequestNotFoundError(
            "request_offer_not_found",
            cluster=request.cluster,
            member=request.member,
            resource=request.resource,
        )
    if not offer.accepts_requests:
        raise RequestConflictError(
            "request_offer_closed", member=request.member, resource=request.resource
        )

    if request.slot is not None:
        _check_slot(connection, key, offer.kind, request.slot)
    if request.amount is not None:
        _check_amount(connection, key, offer.kind, request.amount)

    connection.execute(insert(capacity_requests).values(**_request_row(request, now)))
    _log(connection, request.request_id, now, RequestState.SENT, None)
    log = (RequestLogEntry(now, RequestState.SENT, None),)
    return RequestRecord(request, RequestState.SENT, now, None, log)


def _check_requester(request: CapacityRequest, viewer: Viewer) -> None:
    if viewer.member is None:
        raise RequestForbiddenError("request_needs_member")
    if (viewer.cluster, viewer.member) != (request.cluster, request.requester):
        raise RequestForbiddenError(
            "request_requester_mismatch",
            requester=f"{request.cluster}/{request.requester}",
            caller=f"{viewer.cluster}/{viewer.member}",
        )


def _check_slot(
    connection: Connection, key: tuple[str, str, str], kind: str, slot: Interval
) -> None:
    if kind != "machine":
        raise InvalidRequestError("request_slot_not_machine", kind=kind, resource=key[2])
    inside = connection.execute(
        select(func.count())
        .select_from(free_intervals)
        .where(
            *_offer_key(free_intervals, key),
            free_intervals.c.start <= slot.start,
            free_intervals.c.end >= slot.end,
        )
    ).scalar_one()
    if not inside:
        raise InvalidRequestError(
            "request_slot_not_free",
            start=slot.start.isoformat(),
            end=slot.end.isoformat(),
            resource=key[2],
        )


def _check_amount(
    connection: Connection, key: tuple[str, str, str], kind: str, amount: RequestedAmount
) -> None:
    if kind == "machine":
        raise InvalidRequestError("request_amount_for_machine", resource=key[2])
    conditions = [
        *_offer_key(resource_amounts, key),
        resource_amounts.c.quantity == amount.quantity,
    ]
    if amount.label is not None:
        conditions.append(resource_amounts.c.label == amount.label)
    rows = connection.execute(select(resource_amounts).where(*conditions)).all()
    named = amount.quantity if amount.label is None else f"{amount.quantity} ({amount.label})"
    if not rows:
        raise InvalidRequestError("request_amount_unknown", quantity=named, resource=key[2])

    same_unit = [row for row in rows if row.unit == amount.unit]
    if not same_unit:
        raise InvalidRequestError(
            "request_amount_unit",
            unit=amount.unit,
            quantity=named,
            offered=", ".join(sorted({row.unit for row in rows})),
        )
    # A banded amount is free at least up to its band minimum.
    free = max(row.value if row.value is not None else row.band_min for row in same_unit)
    if free <= 0:
        raise InvalidRequestError(
            "request_amount_none_free", unit=amount.unit, quantity=named, resource=key[2]
        )
    if amount.value > free:
        raise InvalidRequestError(
            "request_amount_above_free",
            value=float(amount.value),
            unit=amount.unit,
            quantity=named,
            free=float(free),
        )


def _request_row(request: CapacityRequest, now: datetime) -> dict[str, Any]:
    slot = request.slot
    amount = request.amount
    return {
        "request_id": request.request_id,
        "cluster": request.cluster,
        "member": request.member,
        "resource": request.resource,
        "requester": request.requester,
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "message": request.message,
        "contact_name": request.contact.name,
        "contact_email": request.contact.email,
        "contact_phone": request.contact.phone,
        "slot_start": slot.start if slot is not None else None,
        "slot_end": slot.end if slot is not None else None,
        "amount_quantity": amount.quantity if amount is not None else None,
        "amount_value": amount.value if amount is not None else None,
        "amount_unit": amount.unit if amount is not None else None,
        "amount_label": amount.label if amount is not None else None,
        "state": RequestState.SENT.value,
        "state_at": now,
    }


# Reads


def list_requests(
    connection: Connection, viewer: Viewer, role: str, limit: int, offset: int
) -> RequestPage:
    """Read the requests ``viewer``'s member sent (role ``sent``) or received, newest first.

    A viewer without a member has neither, so its page is empty.
    """
    if role not in ("sent", "received"):
        raise ValueError(f"role {role!r} is not 'sent' or 'received'")
    if viewer.member is None:
        return RequestPage(items=(), total=0)
    side = capacity_requests.c.requester if role == "sent" else capacity_requests.c.member
    statement = select(capacity_requests).where(
        capacity_requests.c.cluster == viewer.cluster, side == viewer.member
    )
    total = _count(connection, statement)
    rows = connection.execute(
        statement.order_by(capacity_requests.c.created_at.desc(), capacity_requests.c.request_id)
        .limit(limit)
        .offset(offset)
    ).all()
    return RequestPage(items=tuple(_record(row) for row in rows), total=total)


def get_request(connection: Connection, request_id: str, viewer: Viewer) -> RequestRecord | None:
    """Read one request with its log, or ``None`` if it is missing or ``viewer`` may not read it."""
    row = connection.execute(
        select(capacity_requests).where(capacity_requests.c.request_id == request_id)
    ).one_or_none()
    if row is None or not _may_read(row, viewer):
        return None
    log = connection.execute(
        select(request_log).where(request_log.c.request_id == request_id).order_by(request_log.c.id)
    ).all()
    entries = tuple(RequestLogEntry(item.at, RequestState(item.state), item.note) for item in log)
    return _record(row, entries)


def _may_read(row: Row[Any], viewer: Viewer) -> bool:
    if viewer.cluster != row.cluster:
        return False
    return viewer.coordinator or viewer.member in (row.requester, row.member)


def request_counts_per_month(
    connection: Connection, viewer: Viewer, since: datetime | None
) -> list[RequestMonthCount]:
    """Count the requests of the coordinator's cluster per month of creation and current state.

    Open requests are counted under ``sent`` or ``delivered``. Months are those of Europe/Warsaw.
    """
    if not viewer.coordinator:
        raise RequestForbiddenError("request_counts_coordinator_only")
    statement = select(capacity_requests.c.created_at, capacity_requests.c.state).where(
        capacity_requests.c.cluster == viewer.cluster
    )
    if since is not None:
        statement = statement.where(capacity_requests.c.created_at >= since)
    # NOTE: the months are computed in Python, one row per request read, because SQLite and
    # PostgreSQL have no common month function with time zones; fine for a cluster's requests.
    counts: Counter[tuple[date, str]] = Counter()
    for created_at, state in connection.execute(statement):
        local = created_at.astimezone(COUNTS_TIMEZONE)
        counts[(date(local.year, local.month, 1), state)] += 1
    return [
        RequestMonthCount(month, RequestState(state), count)
        for (month, state), count in sorted(counts.items())
    ]


# Changes of state


def withdraw_request(
    connection: Connection, request_id: str, viewer: Viewer, now: datetime
) -> RequestRecord:
    """Mark an open request withdrawn; only its requester may do so."""
    row = _locked_row(connection, request_id)
    if row is None or not _may_read(row, viewer):
        raise RequestNotFoundError("request_not_found", request_id=request_id)
    if viewer.member != row.requester:
        raise RequestForbiddenError("request_withdraw_not_requester", request_id=request_id)
    if row.state not in OPEN_STATES:
        raise RequestConflictError("request_not_open", request_id=request_id, state=row.state)

    _set_state(connection, request_id, RequestState.WITHDRAWN, now)
    _log(connection, request_id, now, RequestState.WITHDRAWN, None)
    updated = get_request(connection, request_id, viewer)
    assert updated is not None  # The viewer read it above, in this transaction.
    return updated


def apply_answer(connection: Connection, answer: Answer, received_at: datetime) -> AnswerOutcome:
    """Apply the owner's ``answer`` if it fits the stored request; return what happened.

    ``state_at`` and the log take ``received_at``, the aggregator's time, because the agent's
    ``decided_at`` comes from another clock. Raises ``ValueError`` for an answer without envelope,
    which the agent's outbox always adds.
    """
    if answer.envelope is None:
        raise ValueError(f"answer to request {answer.request_id} has no envelope and no seq")
    seq = answer.envelope.seq
    row = _locked_row(connection, answer.request_id)
    if row is None:
        return AnswerOutcome.UNKNOWN_REQUEST
    if (row.cluster, row.member, row.resource) != (answer.cluster, answer.member, answer.resource):
        return AnswerOutcome.MISMATCH
    if row.state in FINAL_STATES:
        return AnswerOutcome.FINAL
    if row.answer_seq is not None and seq <= row.answer_seq:
        return AnswerOutcome.STALE

    # Any answer state may follow sent, and accepted or declined may follow delivered, so with
    # final requests ruled out above every change of state is allowed.
    state = RequestState(answer.state.value)
    if state == row.state:
        connection.execute(
            update(capacity_requests)
            .where(capacity_requests.c.request_id == answer.request_id)
            .values(answer_seq=seq)
        )
        return AnswerOutcome.UNCHANGED

    _set_state(connection, answer.request_id, state, received_at, reason=answer.reason, seq=seq)
    _log(connection, answer.request_id, received_at, state, answer.reason)
    return AnswerOutcome.APPLIED


def expire_requests(connection: Connection, now: datetime) -> list[str]:
    """Mark every open request whose ``expires_at`` is not after ``now`` expired; return the ids."""
    due = and_(
        capacity_requests.c.state.in_([state.value for state in OPEN_STATES]),
        capacity_requests.c.expires_at <= now,
    )
    ids = list(
        connection.execute(
            select(capacity_requests.c.request_id).where(due).with_for_update()
        ).scalars()
    )
    if not ids:
        return []
    connection.execute(
        update(capacity_requests)
        .where(capacity_requests.c.request_id.in_(ids), due)
        .values(state=RequestState.EXPIRED.value, state_at=now)
    )
    connection.execute(
        insert(request_log),
        [
            {"request_id": request_id, "at": now, "state": RequestState.EXPIRED.value}
            for request_id in ids
        ],
    )
    return ids


def _locked_row(connection: Connection, request_id: str) -> Row[Any] | None:
    return connection.execute(
        select(capacity_requests)
        .where(capacity_requests.c.request_id == request_id)
        .with_for_update()
    ).one_or_none()


def _set_state(
    connection: Connection,
    request_id: str,
    state: RequestState,
    at: datetime,
    *,
    reason: str | None = None,
    seq: int | None = None,
) -> None:
    values: dict[str, Any] = {"state": state.value, "state_at": at, "reason": reason}
    if seq is not None:
        values["answer_seq"] = seq
    connection.execute(
        update(capacity_requests)
        .where(capacity_requests.c.request_id == request_id)
        .values(**values)
    )


def _log(
    connection: Connection, request_id: str, at: datetime, state: RequestState, note: str | None
) -> None:
    connection.execute(
        insert(request_log).values(request_id=request_id, at=at, state=state.value, note=note)
    )


# Helpers


def _offer_key(table: Any, key: tuple[str, str, str]) -> Sequence[Any]:
    return (table.c.cluster == key[0], table.c.member == key[1], table.c.resource == key[2])


def _count(connection: Connection, statement: Select[Any]) -> int:
    counted = select(func.count()).select_from(statement.order_by(None).subquery())
    total: int = connection.execute(counted).scalar_one()
    return total


def _record(row: Row[Any], log: tuple[RequestLogEntry, ...] = ()) -> RequestRecord:
    slot = Interval(row.slot_start, row.slot_end) if row.slot_start is not None else None
    amount = None
    if row.amount_quantity is not None:
        amount = RequestedAmount(
            row.amount_quantity, row.amount_value, row.amount_unit, row.amount_label
        )
    request = CapacityRequest(
        request_id=row.request_id,
        cluster=row.cluster,
        member=row.member,
        resource=row.resource,
        requester=row.requester,
        created_at=row.created_at,
        expires_at=row.expires_at,
        contact=Contact(row.contact_name, row.contact_email, row.contact_phone),
        message=row.message,
        slot=slot,
        amount=amount,
    )
    return RequestRecord(request, RequestState(row.state), row.state_at, row.reason, log)


def request_from_row(row: Row[Any]) -> CapacityRequest:
    """Return the request stored in a ``capacity_requests`` row, without its state."""
    return _record(row).request
