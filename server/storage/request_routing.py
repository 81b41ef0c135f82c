"""What the broker retains on each request topic, and the answers that come back.

Column ``capacity_requests.routing`` follows a request's retained message: NULL while the request
waits to be published, ``published`` once the broker acknowledged it, and ``cleared`` once the
empty retained payload that clears the topic was acknowledged, or at once for a request that
became final before it was published. Each function runs inside the caller's connection or
transaction (``Storage`` opens them).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, select, update

from kooperant.protocol.answer import Answer
from kooperant.protocol.request import CapacityRequest
from server.storage.delivery import claim_message, is_delivered
from server.storage.members import touch_member
from server.storage.requests import (
    FINAL_STATES,
    OPEN_STATES,
    AnswerOutcome,
    apply_answer,
    request_from_row,
)
from server.storage.tables import capacity_requests


class Routing(StrEnum):
    PUBLISHED = "published"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class RoutingWork:
    """The request topics that need a message now, oldest request first."""

    to_publish: tuple[CapacityRequest, ...]
    """Open requests whose retained message was not acknowledged yet."""
    to_clear: tuple[CapacityRequest, ...]
    """Final requests whose retained message is still on the broker."""


@dataclass(frozen=True, slots=True)
class AnswerReceipt:
    """What storing one answer did.

    ``outcome`` is ``None`` for a message id the member sent before, which changed nothing.
    ``requested_offer`` is ``cluster/member/resource`` of the stored request, or ``None`` when
    no request has the answer's id.
    """

    outcome: AnswerOutcome | None
    requested_offer: str | None = None


# Outcomes of an answer that does not fit its request, so the message is rejected and its id is
# not recorded: the same message is rejected again if it comes back.
REJECTED_ANSWER_OUTCOMES = (AnswerOutcome.UNKNOWN_REQUEST, AnswerOutcome.MISMATCH)


def routing_work(
    connection: Connection, cluster: str | None, limit: int, skipped: Collection[str] = ()
) -> RoutingWork:
    """Read up to ``limit`` requests of ``cluster`` (every cluster when None) of each kind.

    The requests of ``skipped`` ids are left out, so that requests waiting for a retry cannot
    fill every batch and hold back newer ones.
    """
    not_skipped = capacity_requests.c.request_id.not_in(list(skipped))
    to_publish = _requests(
        connection,
        cluster,
        limit,
        capacity_requests.c.routing.is_(None),
        capacity_requests.c.state.in_([state.value for state in OPEN_STATES]),
        not_skipped,
    )
    to_clear = _requests(
        connection,
        cluster,
        limit,
        capacity_requests.c.routing == Routing.PUBLISHED.value,
        capacity_requests.c.state.in_([state.value for state in FINAL_STATES]),
        not_skipped,
    )
    return RoutingWork(to_publish, to_clear)


def clear_unpublished_final(connection: Connection, cluster: str | None) -> int:
    """Mark final requests that were never published cleared; return how many.

    The broker retains nothing for them, so no empty payload needs to go out.
    """
    conditions: list[ColumnElement[bool]] = [
        capacity_requests.c.routing.is_(None),
        capacity_requests.c.state.in_([state.value for state in FINAL_STATES]),
    ]
    if cluster is not None:
        conditions.append(capacity_requests.c.cluster == cluster)
    result = connection.execute(
        update(capacity_requests).where(*conditions).values(routing=Routing.CLEARED.value)
    )
    return result.rowcount


def mark_published(connection: Connection, request_id: str) -> bool:
    """Record that the broker retains the request; return False if its routing was set before."""
    return _set_routing(
        connection, request_id, capacity_requests.c.routing.is_(None), Routing.PUBLISHED
    )


def mark_cleared(connection: Connection, request_id: str) -> bool:
    """Record that the request topic was cleared; return False if it was not ``published``."""
    return _set_routing(
        connection,
        request_id,
        capacity_requests.c.routing == Routing.PUBLISHED.value,
        Routing.CLEARED,
    )


def store_answer(
    connection: Connection, answer: Answer, received_at: datetime, message_id: str
) -> AnswerReceipt:
    """Apply ``answer`` unless its ``message_id`` was delivered before; record the id if it fits.

    The caller's transaction holds the write lock of the answering member, so the duplicate
    check and the record of the id cannot race with another worker.
    """
    if is_delivered(connection, answer.cluster, answer.member, message_id):
        return AnswerReceipt(outcome=None)

    outcome = apply_answer(connection, answer, received_at)
    if outcome is AnswerOutcome.UNKNOWN_REQUEST:
        return AnswerReceipt(outcome)
    if outcome in REJECTED_ANSWER_OUTCOMES:
        return AnswerReceipt(outcome, _requested_offer(connection, answer.request_id))

    claim_message(
        connection,
        answer.cluster,
        answer.member,
        message_id,
        seq=answer.envelope.seq if answer.envelope is not None else None,
        kind="answer",
        received_at=received_at,
    )
    touch_member(connection, answer.cluster, answer.member, received_at)
    return AnswerReceipt(outcome, f"{answer.cluster}/{answer.member}/{answer.resource}")


def _requests(
    connection: Connection, cluster: str | None, limit: int, *conditions: ColumnElement[bool]
) -> tuple[CapacityRequest, ...]:
    statement = select(capacity_requests).where(*conditions)
    if cluster is not None:
        statement = statement.where(capacity_requests.c.cluster == cluster)
    rows = connection.execute(
        statement.order_by(capacity_requests.c.created_at, capacity_requests.c.request_id).limit(
            limit
        )
    ).all()
    return tuple(request_from_row(row) for row in rows)


def _set_routing(
    connection: Connection, request_id: str, condition: ColumnElement[bool], routing: Routing
) -> bool:
    result = connection.execute(
        update(capacity_requests)
        .where(and_(capacity_requests.c.request_id == request_id, condition))
        .values(routing=routing.value)
    )
    changed: Any = result.rowcount
    return bool(changed)


def _requested_offer(connection: Connection, request_id: str) -> str | None:
    row = connection.execute(
        select(
            capacity_requests.c.cluster, capacity_requests.c.member, capacity_requests.c.resource
        ).where(capacity_requests.c.request_id == request_id)
    ).one_or_none()
    return None if row is None else f"{row.cluster}/{row.member}/{row.resource}"
