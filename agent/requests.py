"""Capacity requests sent to this member, and the owner's decisions on them.

They live in table ``requests`` of the agent's local SQLite file (the audit log file). Every write
runs inside an outbox transaction (``Outbox.enqueue_after``), so a stored or changed request and
the answer it needs are committed together: the agent (receiving) and ``kooperant agent accept``,
``decline`` and ``release`` in another process can both write the file.

States of a stored request:

- ``open``: stored and answered ``delivered``; the owner has not decided.
- ``accepted``, ``declined``: the owner decided and the answer is queued. A request for an offer
  that is not published or does not take requests is declined at once, with ``automatic`` set.
- ``closed``: the aggregator cleared the request topic while the request was open, because it
  expired or the requester withdrew it.

An accepted request holds its slot or amount (``agent.holds``) until ``hold_end`` is set:
``released`` by the owner, or ``scheduled`` once the ERP schedule covers the slot. A slot hold
also ends when the slot's end passes, which is computed and not stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from agent.audit import database_error, format_time, open_database
from agent.outbox import Outbox, OutgoingMessage, PayloadBuilder
from agent.request_capacity import HeldCapacity, Unchecked, check_capacity
from kooperant.protocol import Envelope
from kooperant.protocol.answer import Answer, AnswerState
from kooperant.protocol.request import CapacityRequest, parse_request
from kooperant.protocol.topics import answer_topic, offer_topic

MIN_PREFIX_CHARACTERS = 8

_COLUMNS = (
    "request_id, state, payload, received_at, decided_at, reason, automatic, cleared_at,"
    " hold_ended_at, hold_end"
)


class RequestState(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CLOSED = "closed"


class HoldEnd(StrEnum):
    RELEASED = "released"
    SCHEDULED = "scheduled"


@dataclass(frozen=True, slots=True)
class StoredRequest:
    """One request as stored, with the owner's decision and the state of its hold."""

    request: CapacityRequest
    state: RequestState
    received_at: datetime
    decided_at: datetime | None = None
    reason: str | None = None
    automatic: bool = False
    """Whether the agent declined it itself, because the offer takes no requests."""
    cleared_at: datetime | None = None
    """When the agent saw the aggregator clear the request topic."""
    hold_ended_at: datetime | None = None
    hold_end: HoldEnd | None = None

    @property
    def request_id(self) -> str:
        return self.request.request_id

    def expired(self, now: datetime) -> bool:
        """Return whether ``expires_at`` has passed at ``now``."""
        return self.request.expires_at <= now

    def holding(self, now: datetime) -> bool:
        """Return whether the request holds its slot or amount at ``now``."""
        if self.state is not RequestState.ACCEPTED or self.hold_end is not None:
            return False
        slot = self.request.slot
        return slot is None or slot.end > now


@dataclass(frozen=True, slots=True)
class Acceptance:
    """An accepted request, with the capacity checks the latest offer left no data for."""

    stored: StoredRequest
    unchecked: tuple[Unchecked, ...] = ()


class RequestLookupError(Exception):
    """Raised when an id given by the owner names no stored request, or several."""

    def __init__(self, value: str, matches: Sequence[str] = ()) -> None:
        self.value = value
        self.matches = tuple(matches)
        super().__init__(f"request id {value!r} matches {len(matches)} stored requests")


class RequestStateError(Exception):
    """Raised when the owner's command does not fit the state of the request."""

    def __init__(self, stored: StoredRequest, problem: str) -> None:
        self.stored = stored
        self.problem = problem
        """``decided``, ``closed``, ``expired`` or ``not_held``."""
        super().__init__(f"request {stored.request_id} is {problem}")


class RequestStore:
    """The ``requests`` table, written through ``outbox`` so each change queues its answer.

    Raises ``AuditLogError`` naming the file when it cannot be read or written.
    """

    def __init__(self, outbox: Outbox, cluster: str, member: str) -> None:
        self.outbox = outbox
        self.cluster = cluster
        self.member = member
        self.path: Path = outbox.path
        self._connection = open_database(outbox.path)

    def __enter__(self) -> RequestStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._connection.close()

    # --- receiving ------------------------------------------------------------------------

    def store(
        self,
        request: CapacityRequest,
        now: datetime,
        decline_reason: Callable[[bytes | None], str | None],
    ) -> StoredRequest | None:
        """Store a new request and queue its answer; return ``None`` for one already stored.

        ``decline_reason`` gets the latest offer payload queued or sent for the request's
        resource (``None`` when there is none, or the offer was taken back) and returns the reason
        to decline the request automatically, or ``None`` to store it open and answer
        ``delivered``.
        """
        stored: list[StoredRequest] = []

        def write(connection: sqlite3.Connection) -> Sequence[OutgoingMessage]:
            if _select(connection, request.request_id):
                return []
            reason = decline_reason(self._latest_offer(connection, request.resource))
            state = RequestState.OPEN if reason is None else RequestState.DECLINED
            row = StoredRequest(
                request,
                state,
                now,
                decided_at=None if reason is None else now,
                reason=reason,
                automatic=reason is not None,
            )
            connection.execute(
                "INSERT INTO requests (request_id, resource, state, payload, received_at,"
                " expires_at, decided_at, reason, automatic) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.request_id,
                    request.resource,
                    state,
                    request.to_payload().decode("utf-8"),
                    format_time(now),
                    format_time(request.expires_at.astimezone(UTC)),
                    None if reason is None else format_time(now),
                    reason,
                    int(reason is not None),
                ),
            )
            stored.append(row)
            answer = AnswerState.DELIVERED if reason is None else AnswerState.DECLINED
            return [self._answer_message(request, answer, now, reason)]

        self.outbox.enqueue_after(write)
        return stored[0] if stored else None

    def cleared(self, request_id: str, now: datetime) -> StoredRequest | None:
        """Record that the aggregator cleared the request topic, and queue the answer's clear.

        An open request becomes ``closed``; a decided one keeps its state. Returns the request
        when this is the first clear seen for it, ``None`` for an unknown request or a repeat.
        """
        changed: list[StoredRequest] = []

        def write(connection: sqlite3.Connection) -> Sequence[OutgoingMessage]:
            rows = _select(connection, request_id)
            if not rows or rows[0].cleared_at is not None:
                return []
            stored = rows[0]
            state = RequestState.CLOSED if stored.state is RequestState.OPEN else stored.state
            connection.execute(
                "UPDATE requests SET state = ?, cleared_at = ? WHERE request_id = ?",
                (state, format_time(now), request_id),
            )
            changed.append(_replace(stored, state=state, cleared_at=now))
            topic = answer_topic(self.cluster, self.member, request_id)
            return [OutgoingMessage(topic, None)]

        self.outbox.enqueue_after(write)
        return changed[0] if changed else None

    # --- the owner's commands ---------------------------------------------------------------

    def decide(self, value: str, accept: bool, reason: str | None, now: datetime) -> StoredRequest:
        """Accept or decline the open request whose id starts with ``value``; queue the answer.

        Raises ``RequestLookupError`` and ``RequestStateError`` (decided, closed or expired).
        """
        return self._decide(value, accept, reason, now, None)

    def accept(self, value: str, now: datetime, *, force: bool = False) -> Acceptance:
        """Accept the open request whose id starts with ``value`` if its capacity is free.

        Runs ``check_capacity`` against the latest offer of the request's resource and the
        requests that hold capacity at ``now``, unless ``force`` is set. Raises
        ``RequestLookupError``, ``RequestStateError`` and ``CapacityConflictError``.
        """
        unchecked: list[Unchecked] = []

        def check(connection: sqlite3.Connection, stored: StoredRequest) -> None:
            if force:
                return
            holding = [
                HeldCapacity(item.request, item.decided_at or item.received_at)
                for item in _select(connection, None)
                if item.holding(now)
            ]
            offer = self._latest_offer(connection, stored.request.resource)
            unchecked.extend(check_capacity(stored.request, offer, holding))

        stored = self._decide(value, True, None, now, check)
        return Acceptance(stored, tuple(unchecked))

    def _decide(
        self,
        value: str,
        accept: bool,
        reason: str | None,
        now: datetime,
        check: Callable[[sqlite3.Connection, StoredRequest], None] | None,
    ) -> StoredRequest:
        decided: list[StoredRequest] = []

        def write(connection: sqlite3.Connection) -> Sequence[OutgoingMessage]:
            stored = _find(connection, value)
            if stored.state in (RequestState.ACCEPTED, RequestState.DECLINED):
                raise RequestStateError(stored, "decided")
            if stored.state is RequestState.CLOSED:
                raise RequestStateError(stored, "closed")
            if stored.expired(now):
                raise RequestStateError(stored, "expired")
            if check is not None:
                check(connection, stored)
            state = RequestState.ACCEPTED if accept else RequestState.DECLINED
            connection.execute(
                "UPDATE requests SET state = ?, decided_at = ?, reason = ? WHERE request_id = ?",
                (state, format_time(now), reason, stored.request_id),
            )
            decided.append(_replace(stored, state=state, decided_at=now, reason=reason))
            answer = AnswerState.ACCEPTED if accept else AnswerState.DECLINED
            return [self._answer_message(stored.request, answer, now, reason)]

        self.outbox.enqueue_after(write)
        return decided[0]

    def end_hold(self, value: str, end: HoldEnd, now: datetime) -> StoredRequest:
        """End the hold of the accepted request whose id starts with ``value``.

        Raises ``RequestLookupError``, and ``RequestStateError`` (``not_held``) for a request
        that holds nothing at ``now``. Queues no message: the next offer shows the time again.
        """
        ended: list[StoredRequest] = []

        def write(connection: sqlite3.Connection) -> Sequence[OutgoingMessage]:
            stored = _find(connection, value)
            if not stored.holding(now):
                raise RequestStateError(stored, "not_held")
            connection.execute(
                "UPDATE requests SET hold_ended_at = ?, hold_end = ? WHERE request_id = ?",
                (format_time(now), end, stored.request_id),
            )
            ended.append(_replace(stored, hold_ended_at=now, hold_end=end))
            return []

        self.outbox.enqueue_after(write)
        return ended[0]

    # --- reading --------------------------------------------------------------------------

    def read(self) -> list[StoredRequest]:
        """Return every stored request, oldest first."""
        try:
            return _select(self._connection, None)
        except sqlite3.Error as error:
            raise database_error(self.path, "cannot read the requests", error) from error

    def data_version(self) -> int:
        """Return SQLite's ``data_version``, which changes when another connection commits."""
        try:
            version: int = self._connection.execute("PRAGMA data_version").fetchone()[0]
        except sqlite3.Error as error:
            raise database_error(self.path, "cannot read the requests", error) from error
        return version

    def _latest_offer(self, connection: sqlite3.Connection, resource: str) -> bytes | None:
        topic = offer_topic(self.cluster, self.member, resource)
        queued = connection.execute(
            "SELECT payload FROM outbox WHERE topic = ? ORDER BY seq DESC LIMIT 1", (topic,)
        ).fetchone()
        if queued is None:
            queued = connection.execute(
                "SELECT payload FROM audit_messages WHERE topic = ? ORDER BY id DESC LIMIT 1",
                (topic,),
            ).fetchone()
        if queued is None:
            return None
        payload = queued[0]
        data = payload if isinstance(payload, bytes) else str(payload).encode("utf-8")
        return data or None

    def _answer_message(
        self, request: CapacityRequest, state: AnswerState, now: datetime, reason: str | None
    ) -> OutgoingMessage:
        # NOTE: an answer that the outbox drops at its size or age limit is not queued again, so
        # the aggregator never receives it; only offers are recovered after such a drop.
        answer = Answer(
            request.request_id,
            self.cluster,
            self.member,
            request.resource,
            state,
            now,
            reason=reason,
        )
        topic = answer_topic(self.cluster, self.member, request.request_id)
        return OutgoingMessage(topic, _answer_builder(answer))


def _answer_builder(answer: Answer) -> PayloadBuilder:
    def build(envelope: Envelope) -> bytes:
        return answer.with_envelope(envelope).to_payload()

    return build


def _find(connection: sqlite3.Connection, value: str) -> StoredRequest:
    """Return the request whose id is ``value`` or starts with it (at least 8 characters).

    Request ids are lower-case UUIDs, so ``value`` is compared in lower case.
    """
    lowered = value.lower()
    exact = _select(connection, lowered)
    if exact:
        return exact[0]
    if len(lowered) < MIN_PREFIX_CHARACTERS:
        raise RequestLookupError(value)
    # The range matches ids that start with value; LIKE would treat '_' and '%' as wildcards.
    rows = connection.execute(
        f"SELECT {_COLUMNS} FROM requests WHERE request_id >= ? AND request_id < ?"
        " ORDER BY request_id",
        (lowered, lowered + "\uffff"),
    ).fetchall()
    if len(rows) != 1:
        raise RequestLookupError(value, [row[0] for row in rows])
    return _row(rows[0])


def _select(connection: sqlite3.Connection, request_id: str | None) -> list[StoredRequest]:
    if request_id is None:
        sql = f"SELECT {_COLUMNS} FROM requests ORDER BY received_at, request_id"
        rows = connection.execute(sql).fetchall()
    else:
        sql = f"SELECT {_COLUMNS} FROM requests WHERE request_id = ?"
        rows = connection.execute(sql, (request_id,)).fetchall()
    return [_row(row) for row in rows]


def _row(row: tuple[Any, ...]) -> StoredRequest:
    (_, state, payload, received, decided, reason, automatic, cleared, ended, end) = row
    # Rows stored before the rule on control characters stay readable; the listing escapes them.
    return StoredRequest(
        parse_request(str(payload).encode("utf-8"), check_text=False),
        RequestState(state),
        datetime.fromisoformat(received),
        decided_at=_time(decided),
        reason=reason,
        automatic=bool(automatic),
        cleared_at=_time(cleared),
        hold_ended_at=_time(ended),
        hold_end=None if end is None else HoldEnd(end),
    )


def _time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _replace(stored: StoredRequest, **changes: Any) -> StoredRequest:
    return replace(stored, **changes)
